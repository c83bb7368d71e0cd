"""The Activity page (admins and auditors): the audit trail read by people, filtered by who, what and when,
instead of the raw JSON of ``GET /api/v1/audit/``. Read-only: nothing in the console deletes an entry."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.shortcuts import render
from django.utils import timezone

from faceaccess import audit, roles

from .base import page, role_required

PER_PAGE = 50
# What a person filters on: the row changed (auditlog's model name) and the actions.
THINGS = [("person", "people"), ("faceimage", "photos"), ("accessgrant", "site memberships"), ("site", "sites"),
          ("camera", "cameras"), ("eventreview", "reviews"), ("embedderstate", "model switches")]
ACTIONS = ["create", "update", "delete", "face picked", "webhook secret rotated", "person erased"]
ACTION_CODES = {v: k for k, v in audit.ACTIONS.items()}
NOISE = {"id", "created_at", "updated_at"}  # bookkeeping auditlog records on creation


def _day(raw: str, end: bool = False) -> dt.datetime | None:
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        return None
    moment = dt.datetime.combine(day + dt.timedelta(days=1) if end else day, dt.time.min)
    return timezone.make_aware(moment)


def entries(params) -> tuple:
    """The filtered entries, newest first, and the filters as read (bad dates are ignored, not a 500)."""
    rows = LogEntry.objects.select_related("actor", "content_type").order_by("-timestamp", "-id")
    who, thing, action = params.get("who", "").strip(), params.get("what", ""), params.get("action", "")
    if who:
        rows = rows.filter(actor__username=who) if who != "system" else rows.filter(actor__isnull=True)
    if thing in dict(THINGS):
        rows = rows.filter(content_type__model=thing)
    if action in ACTION_CODES:
        rows = rows.filter(action=ACTION_CODES[action]).filter(Q(additional_data__isnull=True) |
                                                               ~Q(additional_data__has_key="what"))
    elif action in ACTIONS:
        rows = rows.filter(additional_data__what=action)
    since, until = _day(params.get("since", "")), _day(params.get("until", ""), end=True)
    if since:
        rows = rows.filter(timestamp__gte=since)
    if until:
        rows = rows.filter(timestamp__lt=until)
    return rows, {"who": who, "what": thing, "action": action, "since": params.get("since", ""),
                  "until": params.get("until", "")}


def describe(entry: LogEntry) -> dict:
    changes = entry.changes_dict if isinstance(entry.changes_dict, dict) else {}
    shown = []
    for field, value in changes.items():
        if field in NOISE or len(shown) >= 8:
            continue
        if isinstance(value, list) and len(value) == 2:
            before, after = ("—" if v in (None, "None", "") or str(v).endswith(".None") else str(v)[:80]
                             for v in value)
            if before != after:  # a reverse relation or an empty field on creation says nothing
                shown.append((field, before, after))
        elif isinstance(value, dict):  # a many-to-many change: {"type": "add", "objects": [...]}
            shown.append((field, value.get("type", ""), ", ".join(map(str, value.get("objects", [])))[:80]))
    extra = entry.additional_data if isinstance(entry.additional_data, dict) else {}
    details = ", ".join(f"{k} {v}" for k, v in extra.items() if k != "what")
    return {"entry": entry, "what": audit.what_of(entry), "who": entry.actor.get_username() if entry.actor else
            "system", "thing": dict(THINGS).get(entry.content_type.model, entry.content_type.model),
            "changes": shown, "details": details}


@role_required(roles.OVERSEERS)
def activity(request):
    rows, filters = entries(request.GET)
    offset, number = page(request, PER_PAGE)
    total = rows.count()
    users = get_user_model().objects.filter(
        pk__in=LogEntry.objects.exclude(actor=None).values("actor")).order_by("username")
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(request, "console/activity.html", {
        "rows": [describe(e) for e in rows[offset:offset + PER_PAGE]], "total": total, "page": number,
        "has_next": offset + PER_PAGE < total, "filters": filters, "filtered": any(filters.values()),
        "users": [u.get_username() for u in users], "things": THINGS, "actions": ACTIONS, "query": query,
        "time_zone": timezone.get_current_timezone_name(),
    })
