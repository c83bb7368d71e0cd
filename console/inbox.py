"""The dashboard's "needs attention" inbox and, on an empty system, the first steps.

Each item is something a person should do, with how many and where to do it: photos waiting for a face pick,
active people with no usable photo, unknown or denied door events nobody reviewed (last 7 days), cameras that
stopped posting, sites whose threshold a model switch left to re-tune."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from access.models import AccessEvent, Camera, Site
from enrollment.models import FaceImage, Person

REVIEW_DAYS = 7
CAMERA_SILENT = dt.timedelta(hours=24)


@dataclass
class Item:
    kind: str
    count: int
    text: str
    url: str
    action: str


def needs_attention(now: dt.datetime | None = None) -> list[Item]:
    now = now or timezone.now()
    items: list[Item] = []
    picks = FaceImage.objects.filter(status=FaceImage.Status.SEVERAL_FACES)
    if n := picks.count():
        first = picks.order_by("id").values_list("person_id", flat=True).first()
        items.append(Item("face_pick", n, f"{n} photo{'s' if n != 1 else ''} with several faces wait for someone "
                          "to pick the right face", reverse("console:person", args=[first]), "pick a face"))
    no_photo = Person.objects.filter(active=True).annotate(
        usable=Count("face_images", filter=Q(face_images__status=FaceImage.Status.ENROLLED))).filter(usable=0)
    if n := no_photo.count():
        items.append(Item("no_photo", n, f"{n} active {'people have' if n != 1 else 'person has'} no usable photo "
                          "(no door recognises them)", reverse("console:people") + "?no_photo=1", "add photos"))
    since = timezone.localdate(now) - dt.timedelta(days=REVIEW_DAYS - 1)
    for decision in ("denied", "unknown"):
        events = AccessEvent.objects.filter(status=AccessEvent.Status.DONE, decision=decision, reviews__isnull=True,
                                            received_at__date__gte=since)
        if n := events.count():
            query = urlencode({"decision": decision, "reviewed": "no", "since": since.isoformat()})
            items.append(Item(f"review_{decision}", n, f"{n} {decision} door event{'s' if n != 1 else ''} of the "
                              f"last {REVIEW_DAYS} days not reviewed", reverse("console:events") + "?" + query,
                              "review"))
    silent = Camera.objects.filter(active=True).filter(
        Q(last_seen_at__lt=now - CAMERA_SILENT) | Q(last_seen_at__isnull=True, created_at__lt=now - CAMERA_SILENT))
    if n := silent.count():
        names = ", ".join(silent.order_by("name").values_list("name", flat=True)[:3])
        items.append(Item("dead_camera", n, f"{n} camera{'s' if n != 1 else ''} silent for over a day ({names})",
                          reverse("console:sites"), "check the camera"))
    noted = Site.objects.exclude(threshold_note="")
    if n := noted.count():
        site = noted.order_by("name").first()
        items.append(Item("threshold_note", n, f"{n} site threshold{'s' if n != 1 else ''} to re-tune after a model "
                          "switch", reverse("console:thresholds", args=[site.pk]), "re-tune"))
    return items


def first_steps() -> list[tuple[str, bool, str]]:
    """(step, done, where) for a system being set up; empty once the first door has decided."""
    if AccessEvent.objects.filter(status=AccessEvent.Status.DONE).exists():
        return []
    return [
        ("Create a site (a building or a set of doors)", Site.objects.exists(), reverse("console:site_new")),
        ("Add a camera to it and copy its key", Camera.objects.exists(), reverse("console:sites")),
        ("Add a person who may enter the site", Person.objects.exists(), reverse("console:person_new")),
        ("Give them 3 photos (upload or webcam)", FaceImage.objects.filter(status="enrolled").exists(),
         reverse("console:people")),
        ("Let the camera post a snapshot (the key page has a curl line)", False, reverse("console:events")),
    ]
