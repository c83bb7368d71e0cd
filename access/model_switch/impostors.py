"""Faces reviewers marked "not <person>" (ImpostorExample) get an embedding of the switch's target too, so they
keep guarding after the switch."""

from __future__ import annotations

import logging

from django.db.models import Exists, OuterRef

from ..models import AccessEventFace, ImpostorExample

log = logging.getLogger(__name__)


def reembed_impostors(old: str, target: str) -> dict[str, int]:
    """Faces reviewers marked "not <person>" get a target embedding from their event's snapshot (the face whose
    box overlaps the stored one most); without the snapshot (retention deleted it) they stay the old model's."""
    from recognition.pipelines import get_pipeline, read_image

    pipeline = get_pipeline(target)
    twins = ImpostorExample.objects.filter(model_name=target, event_face_id=OuterRef("event_face_id"),
                                           person_id=OuterRef("person_id"))
    done = left = 0
    for example in ImpostorExample.objects.filter(model_name=old).exclude(Exists(twins)).select_related(
            "event_face__event"):
        face: AccessEventFace | None = example.event_face
        try:
            if face is None or not face.event.snapshot or not face.box:
                raise LookupError("no snapshot")
            found = pipeline.faces([read_image(face.event.snapshot)], embed=True)[0]
            best = max(found, key=lambda f: _iou(face.box, [float(v) for v in f.box]), default=None)
            if best is None or _iou(face.box, [float(v) for v in best.box]) < 0.5:
                raise LookupError("face not found again")
        except Exception as exc:
            log.info("impostor example %s stays with %s (%s)", example.pk, old, exc)
            left += 1
            continue
        ImpostorExample.objects.create(person_id=example.person_id, event_face=face, created_by=example.created_by,
                                       embedding=best.embedding.tolist(), model_name=pipeline.embedder_name,
                                       model_version=pipeline.embedder_version)
        done += 1
    return {"impostors_reembedded": done, "impostors_left": left}


def _iou(a: list[float], b: list[float]) -> float:
    from enrollment.dominant import box_iou

    return box_iou(a, b)
