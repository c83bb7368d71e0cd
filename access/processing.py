"""Snapshot processing (worker side): detect, match against the enrolled people, decide, store.

Decisions are a pure function (:mod:`access.decisions`) of inputs stored with the event, so
:func:`recorded_faces` lets a what-if replay decide again without the engine.
"""

from __future__ import annotations

import logging
import time

from django.db import transaction
from django.utils import timezone

from enrollment import gallery
from enrollment.models import Person
from faceaccess.jobs import mark_failed
from faceaccess.queries import one_or_none
from recognition.pipelines import (
    FacePipeline,
    batcher,
    current_embedder_name,
    decode_image,
    engine_faces,
    get_pipeline,
    read_bytes,
)

from . import decisions, door
from .impostors import impostor_distance
from .models import AccessEvent, AccessEventFace, Camera, Site, threshold_for
from .naming import person_token
from .snapshots import publish_decision

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


def site_rules(site: Site, model: str | None = None) -> decisions.SiteRules:
    """The site's rules for faces embedded by ``model`` (its threshold for that model: access.models.threshold_for)."""
    threshold = site.match_threshold if model is None else threshold_for(site, model)
    return decisions.SiteRules(site.pk, threshold, site.min_face_px, site.min_detection_score)


def camera_rules(camera: Camera | None) -> decisions.CameraRules:
    if camera is None:
        return decisions.CameraRules()
    return decisions.CameraRules(camera.pk, frozenset(camera.allowed_people.values_list("pk", flat=True)))


class Stopwatch:
    """Milliseconds per stage, for ``AccessEvent.timings``."""

    def __init__(self, timings: dict) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round(self.timings.get(stage, 0.0) + (now - self.last) * 1000.0, 3)
        self.last = now


def intake_timings(intake: dict | None, started_wall: float) -> dict:
    """The web's intake figures from the task message, and the time the job waited in the queue."""
    timings: dict = {}
    if not isinstance(intake, dict):
        return timings
    timings.update({k: v for k, v in intake.items()
                    if k in ("parse", "store", "insert") and isinstance(v, int | float)})
    sent = intake.get("sent")
    if isinstance(sent, int | float):
        timings["queue"] = round(max(0.0, started_wall - sent) * 1000.0, 3)
    return timings


def fail(event_id: int, reason: str, timings: dict | None = None) -> str:
    mark_failed(AccessEvent, event_id, reason, processed_at=timezone.now(), **({"timings": timings} if timings else {}))
    publish_decision(event_id, AccessEvent.Status.FAILED)
    return "failed"


def too_late(event: AccessEvent) -> bool:
    deadline = event.site.decision_deadline_seconds if event.site is not None else 0
    return bool(deadline) and (timezone.now() - event.received_at).total_seconds() > deadline


def expire(event: AccessEvent) -> str:
    """A snapshot that waited longer than its site's deadline: logged as expired, not decided."""
    age = (timezone.now() - event.received_at).total_seconds()
    reason = (f"reached the worker {age:.0f} s after it arrived, past the site's deadline of "
              f"{event.site.decision_deadline_seconds} s: too late for the door, not decided")
    AccessEvent.objects.filter(pk=event.pk, status=AccessEvent.Status.PENDING).update(
        status=AccessEvent.Status.EXPIRED, reason=reason, processed_at=timezone.now())
    publish_decision(event.pk, AccessEvent.Status.EXPIRED)
    return AccessEvent.Status.EXPIRED


def process_snapshot(event_id: int, intake: dict | None = None) -> str:
    """Detect, match and decide one pending event; a bad or failing snapshot ends ``failed`` with a reason.

    ``intake``: the web's timings from the task message (see access.snapshots.HEADER). The engine call goes
    through this process's :func:`recognition.pipelines.batcher`, so concurrent snapshots share it."""
    timings = intake_timings(intake, time.time())
    clock = Stopwatch(timings)
    with batcher().ticket() as ticket:  # announced at once: a batch being gathered may wait for this one
        event = one_or_none(AccessEvent.objects.select_related("site", "camera").filter(pk=event_id))
        if event is None:
            return "gone"
        if event.status != AccessEvent.Status.PENDING:
            return event.status  # a redelivered message for an event already finished
        if too_late(event):
            return expire(event)
        try:
            from recognition.engine import ImageError

            if event.site is None:
                return fail(event_id, "the site was deleted before the snapshot was processed")
            data = read_bytes(event.snapshot)
            clock.lap("load")
            try:
                image = decode_image(data)
            except ImageError as exc:
                clock.lap("decode")
                return fail(event_id, f"bad image: {exc}", timings)
            clock.lap("decode")
            model = current_embedder_name()
            faces, engine = ticket.faces(image, detection=event.site.detection_policy)
            if current_embedder_name() != model:  # the model switched while the engine ran: embed with `model`
                faces = engine_faces(get_pipeline(model), [image], event.site.detection_policy, {})[0]
            timings.update({k: round(v, 3) for k, v in engine.items()})
            clock.last = time.perf_counter()
            return _match_decide_save(event, image.shape, faces, timings, clock, model)
        except Exception as exc:
            log.exception("snapshot %s failed", event_id)
            fail(event_id, f"{type(exc).__name__}: {exc}", timings)
            raise


def _match_decide_save(event: AccessEvent, shape, faces, timings: dict, clock: Stopwatch,
                       model: str | None = None) -> str:
    pipeline = get_pipeline(model)
    matches = gallery.identify([f.embedding for f in faces], pipeline.embedder_name, pipeline.embedder_version)
    site = site_rules(event.site, pipeline.embedder_name)
    impostors = [_impostor_distance(f, m, site, pipeline) for f, m in zip(faces, matches, strict=True)]
    clock.lap("search")
    inputs = [
        decisions.FaceInput(
            score=float(f.score),
            size_px=float(f.quality.size_px),
            nearest_person_id=m.nearest.identity_id if m.nearest else None,
            distance=m.nearest.distance if m.nearest else None,
            runner_up_distance=m.runner_up.distance if m.runner_up else None,
            impostor_distance=imp,
        )
        for f, m, imp in zip(faces, matches, impostors, strict=True)
    ]
    people = person_facts({i.nearest_person_id for i in inputs if i.nearest_person_id is not None})
    outcome = decisions.decide(inputs, site, camera_rules(event.camera), people, event.received_at)
    clock.lap("decide")
    committed = time.perf_counter()
    if _save_outcome(event, shape, faces, matches, outcome, inputs, site, pipeline, clock):
        commit = round((time.perf_counter() - committed) * 1000.0, 3)  # measured from the save's own start
        publish_decision(event.pk, AccessEvent.Status.DONE, decision=outcome.decision,
                         commit=round(commit - timings.get("save", 0.0), 3))
    return outcome.decision


def _impostor_distance(face, match, site: decisions.SiteRules, pipeline: FacePipeline) -> float | None:
    """Only a face that would be accepted as somebody needs the check (one small query)."""
    if match.nearest is None or match.nearest.distance > site.threshold:
        return None
    return impostor_distance(match.nearest.identity_id, face.embedding, pipeline.embedder_name,
                             pipeline.embedder_version)


def _save_outcome(event, shape, faces, matches, outcome, inputs, site: decisions.SiteRules,
                  pipeline: FacePipeline, clock: Stopwatch | None = None) -> bool:
    """Store the faces and the decision; False when another delivery finished the event meanwhile. ``clock``:
    its ``save`` lap (everything but the commit) goes into the event's timings.

    One conditional UPDATE (status still pending) both claims the event and writes the decision, the door's
    debounce is looked up before it and stored with it: three round trips fewer than lock, save, mark handled,
    debounce, each of which the door waited for."""
    now = timezone.now()
    repeat = (door.first_granted_within(event.camera, outcome.person_id, event.received_at, event.pk)
              if outcome.decision == decisions.GRANTED else None)
    decided = {
        "status": AccessEvent.Status.DONE, "decision": outcome.decision, "reason": outcome.reason,
        "person_id": outcome.person_id, "processed_at": now,
        "latency_ms": (now - event.received_at).total_seconds() * 1000.0, "threshold": site.threshold,
        "min_face_px": site.min_face_px, "min_detection_score": site.min_detection_score,
        "model_name": pipeline.embedder_name, "model_version": pipeline.embedder_version,
        "image_height": int(shape[0]), "image_width": int(shape[1]),
        "door_handled": True, "repeat_of_id": repeat,  # the door's work is done right here
    }
    with transaction.atomic():
        if clock is not None:
            clock.lap("save")
            decided["timings"] = clock.timings
        if not AccessEvent.objects.filter(pk=event.pk, status=AccessEvent.Status.PENDING).update(**decided):
            return False  # finished meanwhile by another delivery
        AccessEventFace.objects.bulk_create(
            AccessEventFace(
                event_id=event.pk,
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
        door.queue_webhook(event.pk, event.camera, repeat)
    return True
