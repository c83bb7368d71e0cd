"""What the console and the API show of a switch: its state and progress, the failures, the people who would
lose their last usable photo, and every site's threshold with the model it belongs to."""

from __future__ import annotations

from typing import Any

from enrollment.models import Person
from recognition.active import configured_embedder_name, state_row
from recognition.pipelines import current_embedder_name

from ..models import Site
from ..thresholds import model_default_threshold
from .progress import ENROLLED


def people_losing_their_last_photo(failures: list[dict]) -> list[Person]:
    """People every enrolled photo of whom failed with the target: after the switch nobody recognises them."""
    failed = {f["image"] for f in failures}
    people = {f["person"] for f in failures}
    out = []
    for person in Person.objects.filter(pk__in=people).prefetch_related("face_images"):
        enrolled = {i.pk for i in person.face_images.all() if i.status == ENROLLED}
        if enrolled and enrolled <= failed:
            out.append(person)
    return out


def status() -> dict[str, Any]:
    """The switch as JSON (API) and template context (console)."""
    from recognition.engine.registry import EMBEDDERS, MEASURED

    row = state_row()
    active = row.active_name or current_embedder_name()
    tried = row.done + row.failed
    losing = people_losing_their_last_photo(row.failures) if row.failures else []
    names = dict(Person.objects.filter(pk__in={f["person"] for f in row.failures}).values_list("pk", "name"))
    return {
        "active": {"name": active, "version": row.active_version, "threshold": model_default_threshold(active)},
        "previous": row.previous_name or None,
        "configured": configured_embedder_name(),
        "state": row.state,
        "target": {"name": row.target_name, "version": row.target_version} if row.target_name else None,
        "total": row.total, "done": row.done, "failed": row.failed,
        "percent": round(100.0 * tried / row.total, 1) if row.total else (100.0 if row.target_name else 0.0),
        "failures": [{**f, "person_name": names.get(f["person"], "")} for f in row.failures],
        "people_losing_last_photo": [{"id": p.pk, "name": p.name} for p in losing],
        "impostors": {k: v for k, v in row.extra.items() if k.startswith("impostors_")},
        "message": row.message, "started_by": row.started_by,
        "started_at": row.started_at, "finished_at": row.finished_at, "switched_at": row.switched_at,
        "models": [{"name": m, "threshold": model_default_threshold(m), "active": m == active,
                    **MEASURED.get(m, {})} for m in EMBEDDERS],
        "sites": [{"id": s.pk, "name": s.name, "threshold": s.match_threshold, "threshold_model": s.threshold_model,
                   "other_thresholds": s.other_thresholds, "note": s.threshold_note}
                  for s in Site.objects.order_by("name")],
    }
