"""Snapshot processing (worker side): detect, match against the enrolled people, decide, store.

Decisions are a pure function (:mod:`access.decisions`) of inputs stored with the event, so
:func:`recorded_faces` lets a what-if replay decide again without the engine.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from enrollment import gallery
from enrollment.models import Person
from faceaccess.jobs import mark_failed
from recognition.pipelines import FacePipeline, get_pipeline, read_image

from . import decisions
from .impostors import impostor_distance
from .models import AccessEvent, AccessEventFace, Camera, Site
from .naming import person_token

log = logging.getLogger(__name__)


def person_facts(person_ids: set[int], names: bool = False) -> dict[int, decisions.PersonFacts]:
    """What the decision needs to know of these people. Their names are tokens (rendered when read, see
    access.naming) unless ``names``: reasons stored in the log must not name anybody."""
    people = Person.objects.filter(pk__in=person_ids).prefetch_related("grants")
    return {
        p.pk: decisions.PersonFacts(
            p.pk, p.name if names else person_token(p.pk), p.active, p.valid_from, p.valid_until,
            tuple(decisions.Grant(g.site_id, g.valid_from, g.valid_until) for g in p.grants.all()),
        )
        for p in people
    }


def recorded_faces(event: AccessEvent) -> list[decisions.FaceInput]:
    """The decision inputs stored with an event, so a replay (another threshold...) needs no engine."""
    return [
        decisions.FaceInput(f.score, f.size_px or 0.0, f.nearest_person_id, f.distance, f.runner_up_distance,
                            f.impostor_distance)
        for f in event.faces.order_by("index")
    ]


def site_rules(site: Site) -> decisions.SiteRules:
    return decisions.SiteRules(site.pk, site.match_threshold, site.min_face_px, site.min_detection_score)


def camera_rules(camera: Camera | None) -> decisions.CameraRules:
    if camera is None:
        return decisions.CameraRules()
    return decisions.CameraRules(camera.pk, frozenset(camera.allowed_people.values_list("pk", flat=True)))


def process_snapshot(event_id: int) -> str:
    """Detect, match and decide one pending event; a bad or failing snapshot ends ``failed`` with a reason."""
    event = AccessEvent.objects.select_related("site", "camera").filter(pk=event_id).first()
    if event is None:
        return "gone"
    if event.status != AccessEvent.Status.PENDING:
        return event.status  # a redelivered message for an event already finished
    try:
        from recognition.engine import ImageError

        if event.site is None:
            mark_failed(AccessEvent, event_id, "the site was deleted before the snapshot was processed")
            return "failed"
        try:
            image = read_image(event.snapshot)
        except ImageError as exc:
            mark_failed(AccessEvent, event_id, f"bad image: {exc}", processed_at=timezone.now())
            return "failed"
        pipeline = get_pipeline()
        faces = pipeline.faces([image], embed=True, detection=event.site.detection_policy)[0]
        matches = gallery.identify([f.embedding for f in faces], pipeline.embedder_name, pipeline.embedder_version)
        site = site_rules(event.site)
        inputs = [
            decisions.FaceInput(
                score=float(f.score),
                size_px=float(f.quality.size_px),
                nearest_person_id=m.nearest.identity_id if m.nearest else None,
                distance=m.nearest.distance if m.nearest else None,
                runner_up_distance=m.runner_up.distance if m.runner_up else None,
                impostor_distance=_impostor_distance(f, m, site, pipeline),
            )
            for f, m in zip(faces, matches, strict=True)
        ]
        people = person_facts({i.nearest_person_id for i in inputs if i.nearest_person_id is not None})
        outcome = decisions.decide(inputs, site, camera_rules(event.camera), people, event.received_at)
        _save_outcome(event, image.shape, faces, matches, outcome, inputs, site, pipeline)
        return outcome.decision
    except Exception as exc:
        log.exception("snapshot %s failed", event_id)
        mark_failed(AccessEvent, event_id, f"{type(exc).__name__}: {exc}", processed_at=timezone.now())
        raise


def _impostor_distance(face, match, site: decisions.SiteRules, pipeline: FacePipeline) -> float | None:
    """Only a face that would be accepted as somebody needs the check (one small query)."""
    if match.nearest is None or match.nearest.distance > site.threshold:
        return None
    return impostor_distance(match.nearest.identity_id, face.embedding, pipeline.embedder_name,
                             pipeline.embedder_version)


def _save_outcome(event, shape, faces, matches, outcome, inputs, site: decisions.SiteRules,
                  pipeline: FacePipeline) -> None:
    now = timezone.now()
    with transaction.atomic():
        locked = AccessEvent.objects.select_for_update().filter(pk=event.pk, status="pending").first()
        if locked is None:
            return  # finished meanwhile by another delivery
        AccessEventFace.objects.bulk_create(
            AccessEventFace(
                event=locked,
                index=i,
                **AccessEventFace.fields_of(face),
                nearest_person_id=m.nearest.identity_id if m.nearest else None,
                distance=m.nearest.distance if m.nearest else None,
                runner_up_person_id=m.runner_up.identity_id if m.runner_up else None,
                runner_up_distance=m.runner_up.distance if m.runner_up else None,
                impostor_distance=inp.impostor_distance,
                decision=o.decision,
                reason=o.reason,
                embedding=face.embedding.tolist() if face.embedding is not None else None,
            )
            for i, (face, m, o, inp) in enumerate(zip(faces, matches, outcome.faces, inputs, strict=True))
        )
        locked.status = AccessEvent.Status.DONE
        locked.decision = outcome.decision
        locked.reason = outcome.reason
        locked.person_id = outcome.person_id
        locked.processed_at = now
        locked.latency_ms = (now - locked.received_at).total_seconds() * 1000.0
        locked.threshold = site.threshold
        locked.min_face_px = site.min_face_px
        locked.min_detection_score = site.min_detection_score
        locked.model_name = pipeline.embedder_name
        locked.model_version = pipeline.embedder_version
        locked.image_height, locked.image_width = int(shape[0]), int(shape[1])
        locked.save()
