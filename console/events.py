"""The access log: filters, paging, CSV export of the filtered view, and one event with its snapshot,
every face box and label."""

from __future__ import annotations

import csv

from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from access import naming
from access.filters import EventFilter
from access.models import AccessEvent, faces_without_vectors
from access.review.reviews import UNDO_WINDOW_S
from enrollment.models import Person

from .base import page, role_required
from .review import next_unreviewed

PER_PAGE = 50
CSV_COLUMNS = ["id", "received_at", "site", "camera", "status", "decision", "person", "distance", "threshold",
               "reason", "latency_ms"]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A text cell a spreadsheet would not run as a formula (CSV injection, OWASP: prefix ``'``)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _events():
    return AccessEvent.objects.select_related("site", "camera", "person").prefetch_related(faces_without_vectors())


@role_required()
def event_list(request):
    filters = EventFilter(request.GET or None, queryset=_events())
    events = filters.qs if filters.is_bound and filters.is_valid() else _events()
    offset, number = page(request, PER_PAGE)
    total = events.count()
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "console/events.html", {
        "filters": filters, "events": list(events[offset:offset + PER_PAGE]), "total": total, "page": number,
        "has_next": offset + PER_PAGE < total, "query": query.urlencode(),
        "filtered": any(v for k, v in request.GET.items() if k != "page"),
    })


class _Echo:
    def write(self, value: str) -> str:
        return value


@role_required()
def event_csv(request):
    filters = EventFilter(request.GET or None, queryset=_events())
    events = filters.qs if filters.is_bound and filters.is_valid() else _events()
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for e in events.iterator(chunk_size=500):
            yield writer.writerow([safe_cell(cell) for cell in [
                e.pk, timezone.localtime(e.received_at).isoformat(), e.site.name if e.site else "",
                e.camera.name if e.camera else "", e.status, e.decision, e.person.name if e.person else "",
                f"{e.best_distance:.4f}" if e.best_distance is not None else "",
                f"{e.threshold:.4f}" if e.threshold is not None else "", naming.render(e.reason),
                f"{e.latency_ms:.0f}" if e.latency_ms is not None else "",
            ]])

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="access-log-{timezone.localdate():%Y%m%d}.csv"'
    return response


@role_required()
def event_detail(request, pk: int):
    event = get_object_or_404(_events(), pk=pk)
    faces = list(event.faces.select_related("nearest_person").order_by("index"))
    reviews = event.reviews.select_related("person", "reviewer")
    return render(request, "console/event.html", {
        "event": event, "faces": faces, "reviews": reviews, "people": Person.objects.order_by("name")[:2000],
        "next_unreviewed": next_unreviewed(event), "undo_seconds": UNDO_WINDOW_S,
        "matched": next((f.nearest_person for f in faces if f.nearest_person_id), None),
    })


@role_required()
def event_snapshot(request, pk: int):
    event = get_object_or_404(AccessEvent, pk=pk)
    if not event.snapshot:
        raise Http404("this event has no stored snapshot")
    return FileResponse(event.snapshot.open("rb"))
