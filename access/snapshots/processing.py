"""Snapshot processing (worker side): detect, match against the enrolled people, decide, store, then the
door's step (:func:`access.outputs.door.decided`) once the decision has committed.

Decisions are a pure function (:mod:`access.decisions`) of inputs stored with the event
(:mod:`access.decision_inputs`), so a what-if replay decides again without the engine.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from django.db import transaction
from django.utils import timezone

from enrollment import gallery
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

from .. import decisions
from ..decision_inputs import camera_rules, person_facts, site_rules, with_holidays
from ..models import AccessEvent, AccessEventFace
from ..outputs import door
from ..review.impostors import impostor_distance
from ..rules import credentials, factors
from .channel import publish_decision

log = logging.getLogger(__name__)


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


def process_snapshot(event_id: int, intake: dict | None = None, credential: str | None = None) -> str:
    """Detect, match and decide one pending event; a bad or failing snapshot ends ``failed`` with a reason.

    ``intake``: the web's timings from the task message (see access.snapshots.channel.HEADER). The engine call goes
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
            return _match_decide_save(event, image, faces, timings, clock, model, credential)
        except Exception as exc:
            log.exception("snapshot %s failed", event_id)
            fail(event_id, f"{type(exc).__name__}: {exc}", timings)
            raise


def _match_decide_save(event: AccessEvent, image, faces, timings: dict, clock: Stopwatch,
                       model: str | None = None, sealed: str | None = None) -> str:
    shape = image.shape
    pipeline = get_pipeline(model)
    matches = gallery.identify([f.embedding for f in faces], pipeline.embedder_name, pipeline.embedder_version)
    site = site_rules(event.site, pipeline.embedder_name, holidays=False)  # read below when levels need them
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
    camera = camera_rules(event.camera)
    credential = _check_credential(sealed, camera.mode(site), inputs, site)
    if camera.mode(site) != factors.FACE:
        clock.lap("credential")
    candidates = {i.nearest_person_id for i in inputs if i.nearest_person_id is not None}
    if credential.card_person_id is not None:
        candidates.add(credential.card_person_id)
    people = person_facts(candidates, site_id=site.site_id)
    site = with_holidays(site, people)
    outcome = decisions.decide(inputs, site, camera, people, event.received_at, credential)
    clock.lap("decide")
    if site.liveness_policy != decisions.LIVENESS_OFF:
        outcome = _check_liveness(event.pk, image, faces, inputs, site, camera, people, outcome, pipeline,
                                  event.received_at, credential)
        clock.lap("liveness")
    event.verification, event.credential_check = camera.mode(site), credential
    committed = time.perf_counter()
    repeat = (door.first_granted_within(event.camera, outcome.person_id, event.received_at, event.pk)
              if outcome.decision == decisions.GRANTED else None)
    if _save_outcome(event, shape, faces, matches, outcome, inputs, site, pipeline, repeat, clock):
        commit = round((time.perf_counter() - committed) * 1000.0, 3)  # measured from the save's own start
        door.decided(event.pk, event.camera, repeat)  # this delivery's UPDATE claimed the event: once per event
        publish_decision(event.pk, AccessEvent.Status.DONE, decision=outcome.decision,
                         commit=round(commit - timings.get("save", 0.0), 3))
    return outcome.decision


def _check_credential(sealed: str | None, mode: str, inputs: list[decisions.FaceInput],
                      site: decisions.SiteRules) -> factors.CredentialCheck:
    """The PIN / card that came with the snapshot, checked: a PIN against the people the faces matched within the
    threshold (nearest first, at most 3; a PIN that is nobody's counts towards the nearest one's lockout), a card by
    its holder. A face-only door ignores whatever came (no PIN is compared, no lockout counted)."""
    if mode == factors.FACE:
        return factors.NO_CREDENTIAL
    matched = sorted((i.distance, i.nearest_person_id) for i in inputs
                     if i.nearest_person_id is not None and i.distance is not None and i.distance <= site.threshold)
    if mode == factors.FACE_PIN:  # a card sent to a PIN door is not looked at
        nearest = list(dict.fromkeys(pid for _, pid in matched))[:3]
        return factors.CredentialCheck(credentials.check(sealed, nearest).pin)
    check = credentials.check(sealed, [])  # a card door: a PIN that came along is compared with nobody's
    return factors.CredentialCheck(None, check.card_last4, check.card_person_id)


def _check_liveness(event_id: int, image, faces, inputs: list[decisions.FaceInput], site: decisions.SiteRules,
                    camera: decisions.CameraRules, people, outcome: decisions.Outcome, pipeline: FacePipeline,
                    now, credential: factors.CredentialCheck = factors.NO_CREDENTIAL) -> decisions.Outcome:
    """Score the face the decision still needs a live score for (the one about to let somebody in), decide
    again, and repeat while another face takes its place (enforce: a print beside a live colleague). Nothing
    else is scored. A score that cannot be had (liveness not installed in this worker, an engine error) leaves
    the face unscored: under enforce it is then denied ("liveness could not be checked"), under monitor the
    decision stands unscored."""
    while (index := decisions.liveness_candidate(inputs, site, outcome)) is not None:
        try:
            live = float(pipeline.score_liveness(image, [faces[index]])[0])
        except Exception as exc:
            log.warning("event %s: no live score (%s: %s)", event_id, type(exc).__name__, exc)
            return outcome
        inputs[index] = dataclasses.replace(inputs[index], liveness=live)  # the face itself has it too
        outcome = decisions.decide(inputs, site, camera, people, now, credential)
    return outcome


def _impostor_distance(face, match, site: decisions.SiteRules, pipeline: FacePipeline) -> float | None:
    """Only a face that would be accepted as somebody needs the check (one small query)."""
    if match.nearest is None or match.nearest.distance > site.threshold:
        return None
    return impostor_distance(match.nearest.identity_id, face.embedding, pipeline.embedder_name,
                             pipeline.embedder_version)


def _save_outcome(event, shape, faces, matches, outcome, inputs, site: decisions.SiteRules,
                  pipeline: FacePipeline, repeat: int | None, clock: Stopwatch | None = None) -> bool:
    """Store the faces and the decision; False when another delivery finished the event meanwhile. ``clock``:
    its ``save`` lap (everything but the commit) goes into the event's timings.

    One conditional UPDATE (status still pending) both claims the event and writes the decision with the door's
    debounce (``repeat``, looked up before it): the delivery that wins it is the one that runs the door's step."""
    now = timezone.now()
    decided = {
        "status": AccessEvent.Status.DONE, "decision": outcome.decision, "reason": outcome.reason,
        "person_id": outcome.person_id, "processed_at": now,
        "latency_ms": (now - event.received_at).total_seconds() * 1000.0, "threshold": site.threshold,
        "min_face_px": site.min_face_px, "min_detection_score": site.min_detection_score,
        "liveness_policy": site.liveness_policy, "liveness_threshold": site.liveness_threshold,
        "liveness": _deciding_liveness(outcome, inputs), "reason_code": outcome.code,
        "model_name": pipeline.embedder_name, "model_version": pipeline.embedder_version,
        "image_height": int(shape[0]), "image_width": int(shape[1]),
        "repeat_of_id": repeat,
        **_credential_fields(event, outcome),
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
    return True


def _credential_fields(event: AccessEvent, outcome: decisions.Outcome) -> dict:
    """The door's mode and the credential check's outcomes for the event row (never a PIN or a card number)."""
    mode = getattr(event, "verification", "") or factors.FACE
    check = getattr(event, "credential_check", factors.NO_CREDENTIAL)
    return {"verification": mode, "second_factor": check.summary(mode, outcome.person_id),
            "credential": None if mode == factors.FACE else check.stored()}


def _deciding_liveness(outcome: decisions.Outcome, inputs: list[decisions.FaceInput]) -> float | None:
    """The live score of the face that decided (the one accepted as ``outcome.person_id``), if it was scored."""
    scored = [i.liveness for i, o in zip(inputs, outcome.faces, strict=True)
              if i.liveness is not None and o.person_id is not None and o.person_id == outcome.person_id
              and o.decision == outcome.decision]
    return scored[0] if scored else None
