"""Threshold tuning per site (admins): distance plot, implied rates, a suggestion for a false-accept
target, a what-if replay of recent events, and saving with who/when/from/to in the audit log."""

from __future__ import annotations

from auditlog.models import LogEntry
from django.contrib import messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from access import liveness
from access.models import Site
from access.review import suggestion, tuning
from access.thresholds import current_threshold, model_default_threshold, set_threshold, validate_threshold
from faceaccess import roles

from .base import role_required

FAR_TARGETS = [0.001, 0.01, 0.05]


def _float(raw: str | None, default: float, low: float, high: float) -> float:
    try:
        value = float(raw) if raw not in (None, "") else default
    except ValueError:
        return default
    return min(max(value, low), high)


@role_required(roles.OVERSEERS)
def thresholds(request, pk: int):
    """Admins tune; auditors read the same page (figures, what-if, history) without the save form."""
    site = get_object_or_404(Site, pk=pk)
    if request.method == "POST":
        if roles.role_of(request.user) != roles.ADMIN:
            return render(request, "403.html", status=403)
        return _save(request, site)
    threshold = current_threshold(site)
    candidate = _float(request.GET.get("candidate"), threshold, 0.05, 2.0)
    far_target = _float(request.GET.get("far"), 0.01, 0.0001, 0.5)
    last = int(_float(request.GET.get("last"), 100, 10, 2000))
    d = tuning.site_distances(site)
    replay = tuning.what_if(site, candidate, last)
    history = LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Site), object_pk=str(site.pk),
                                      action=LogEntry.Action.UPDATE, changes__has_key="match_threshold",
                                      ).select_related("actor")[:20]
    context = {
        "site": site, "d": d, "candidate": candidate, "far_target": far_target, "last": last,
        "far_targets": FAR_TARGETS, "replay": replay,
        "rates": [(label, t, d.false_accept(t), d.genuine_accept(t)) for label, t in
                  (("current", threshold), ("candidate", candidate))],
        "suggested": None,  # kept for templates of other pages; the suggestion below says when it is meaningful
        "suggestion": suggestion.suggest(d, far_target, model_default_threshold(d.model or site.threshold_model)),
        "one_stranger": 1.0 / d.people if d.people else None,
        "history": [_change(entry) for entry in history],
        "live": tuning.live_scores(site),
        "liveness_missing": None if liveness.installed() else liveness.not_installed_message(),
    }
    template = "console/_whatif.html" if request.htmx and request.GET.get("part") == "whatif" else \
        "console/thresholds.html"
    return render(request, template, context)


@role_required(roles.OVERSEERS)
def threshold_plot(request, pk: int):
    site = get_object_or_404(Site, pk=pk)
    threshold = current_threshold(site)
    candidate = _float(request.GET.get("candidate"), threshold, 0.05, 2.0)
    svg = tuning.plot_svg(tuning.site_distances(site), threshold, candidate)
    return HttpResponse(svg, content_type="image/svg+xml")


@role_required(roles.OVERSEERS)
def liveness_plot(request, pk: int):
    site = get_object_or_404(Site, pk=pk)
    return HttpResponse(tuning.live_plot_svg(tuning.live_scores(site)), content_type="image/svg+xml")


def _save(request, site: Site):
    """Tightening saves at once. Loosening (a larger threshold lets more faces in) first shows what it would
    change and asks for a reason; the history records it. A revert to the value before the last change is one
    click (it returns to a value an admin chose before)."""
    raw = request.POST.get("threshold", "")
    old = current_threshold(site)
    try:
        value = float(raw)
        validate_threshold(value)
    except (ValueError, ValidationError):
        messages.error(request, f"Not saved: the threshold must be a number in (0, 2], got {raw!r}.")
        return redirect("console:thresholds", site.pk)
    reason = request.POST.get("reason", "").strip()[:500]
    revert = request.POST.get("revert") == "1"
    loosening = value > old + 1e-9
    if loosening and not revert and (request.POST.get("confirm") != "1" or not reason):
        return _confirm_loosening(request, site, old, value, asked=request.POST.get("confirm") == "1")
    what = "threshold reverted" if revert else "threshold loosened" if loosening else "threshold tightened"
    details = {"what": what, **({"reason": reason} if reason else {})}
    site.get_additional_data = lambda: details  # django-auditlog stores it with the Site update entry
    set_threshold(site, value)
    messages.success(request, f"Threshold of {site.name} changed from {old:.3f} to {site.match_threshold:.3f}"
                              f"{' (reverted)' if revert else ''}.")
    return redirect("console:thresholds", site.pk)


def _confirm_loosening(request, site: Site, old: float, value: float, asked: bool):
    d = tuning.site_distances(site)
    replay = tuning.what_if(site, value, 100)
    moves: dict[tuple[str, str], int] = {}
    for c in replay.changed:
        moves[(c["was"], c["now"])] = moves.get((c["was"], c["now"]), 0) + 1
    return render(request, "console/thresholds_confirm.html", {
        "site": site, "old": old, "value": value, "replay": replay, "moves": sorted(moves.items()),
        "rates": [(label, t, d.false_accept(t), d.genuine_accept(t)) for label, t in (("now", old), ("new", value))],
        "card": model_default_threshold(d.model or site.threshold_model), "reason_missing": asked,
    })


def _change(entry: LogEntry) -> dict:
    before, after = entry.changes_dict.get("match_threshold", ["?", "?"])
    extra = entry.additional_data if isinstance(entry.additional_data, dict) else {}
    return {"who": entry.actor.get_username() if entry.actor else "system", "when": entry.timestamp,
            "before": before, "after": after, "reason": extra.get("reason", ""), "what": extra.get("what", "")}
