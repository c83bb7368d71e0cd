"""What the engine worker process does: hold one Pipeline per process and turn a snapshot into a decision.

The Pipeline is loaded on first use (or right after ``worker_process_init`` when
FACEACCESS_PRELOAD_PIPELINE is on) and kept for the life of the process; a web
request never loads a model.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery.signals import worker_process_init
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import decisions, matching
from .models import AccessEvent, AccessEventFace, Camera, Site

log = logging.getLogger(__name__)

_lock = threading.Lock()
_pipelines: dict[str, Any] = {}
_test_pipeline: Any = None


def current_embedder_name() -> str:
    """The model whose embeddings are matched against (FACEACCESS_EMBEDDER, else the registry default)."""
    name = getattr(settings, "FACEACCESS_EMBEDDER", None)
    if name:
        return name
    from recognition.engine.registry import default_embedder_name

    return default_embedder_name()


def set_pipeline_for_tests(pipeline: Any) -> None:
    """Use ``pipeline`` (anything with ``faces()``, ``embedder_name``, ``embedder_version``) instead of the
    engine; None restores the real one."""
    global _test_pipeline
    _test_pipeline = pipeline


def get_pipeline(embedder: str | None = None) -> Any:
    """The process's Pipeline for ``embedder`` (default: the current one), loaded once."""
    if _test_pipeline is not None:
        return _test_pipeline
    name = embedder or current_embedder_name()
    with _lock:
        if name not in _pipelines:
            import torch

            from recognition.engine import Pipeline

            threads = getattr(settings, "FACEACCESS_TORCH_THREADS", None)
            if threads:
                torch.set_num_threads(int(threads))
            started = time.monotonic()
            device = getattr(settings, "FACEACCESS_DEVICE", None)
            _pipelines[name] = Pipeline.load(embedder=name, device=None if device in (None, "", "auto") else device)
            pipe = _pipelines[name]
            log.info("loaded pipeline %s-%s on %s in %.1f s", pipe.embedder_name, pipe.embedder_version,
                     getattr(pipe, "device", "?"), time.monotonic() - started)
        return _pipelines[name]


@worker_process_init.connect(dispatch_uid="recognition.worker.preload")
def _preload(**kwargs: object) -> None:
    # In a thread: the pool gives a new child only a few seconds to report ready, and loading torch and
    # the weights can take longer. A task that arrives meanwhile waits on the lock for the same load.
    if getattr(settings, "FACEACCESS_PRELOAD_PIPELINE", False):
        threading.Thread(target=_load_quietly, name="pipeline-preload", daemon=True).start()


def _load_quietly() -> None:
    try:
        get_pipeline()
    except Exception:
        log.exception("preloading the pipeline failed; the first task will retry and report it")


def read_image(field_file: Any) -> Any:
    """Decode a stored upload with the same checks the API applied."""
    from recognition.engine import load_image

    with field_file.open("rb") as fh:
        data = fh.read()
    return load_image(data, max_pixels=max_image_pixels())


def max_image_pixels() -> int:
    return int(getattr(settings, "FACEACCESS_MAX_PIXELS", 40_000_000))


def mark_failed(model: Any, pk: int, reason: str, **extra: Any) -> None:
    model.objects.filter(pk=pk).update(status="failed", reason=reason[:2000], **extra)


def fail_if_unfinished(model: Any, pk: int, reason: str) -> None:
    """Mark a row failed unless it already finished (the task's own handler usually got there first)."""
    model.objects.filter(pk=pk, status__in=["pending", "processing"]).update(
        status="failed", reason=reason[:2000], processed_at=timezone.now()
    )


def person_facts(person_ids: set[int]) -> dict[int, decisions.PersonFacts]:
    from enrollment.models import Person

    people = Person.objects.filter(pk__in=person_ids).prefetch_related("sites")
    return {
        p.pk: decisions.PersonFacts(
            p.pk, p.name, p.active, p.valid_from, p.valid_until, frozenset(s.pk for s in p.sites.all())
        )
        for p in people
    }


def recorded_faces(event: AccessEvent) -> list[decisions.FaceInput]:
    """The decision inputs stored with an event, so a replay (another threshold...) needs no engine."""
    return [
        decisions.FaceInput(f.score, f.size_px or 0.0, f.nearest_person_id, f.distance, f.runner_up_distance)
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
        faces = pipeline.faces([image], embed=True)[0]
        matches = matching.identify(
            [f.embedding for f in faces], pipeline.embedder_name, pipeline.embedder_version
        )
        inputs = [
            decisions.FaceInput(
                score=float(f.score),
                size_px=float(f.quality.size_px),
                nearest_person_id=m.nearest.person_id if m.nearest else None,
                distance=m.nearest.distance if m.nearest else None,
                runner_up_distance=m.runner_up.distance if m.runner_up else None,
            )
            for f, m in zip(faces, matches, strict=True)
        ]
        site = site_rules(event.site)
        people = person_facts({i.nearest_person_id for i in inputs if i.nearest_person_id is not None})
        outcome = decisions.decide(inputs, site, camera_rules(event.camera), people, event.received_at)
        _save_outcome(event, image.shape, faces, matches, outcome, site, pipeline)
        return outcome.decision
    except Exception as exc:
        log.exception("snapshot %s failed", event_id)
        mark_failed(AccessEvent, event_id, f"{type(exc).__name__}: {exc}", processed_at=timezone.now())
        raise


def _save_outcome(event, shape, faces, matches, outcome, site, pipeline) -> None:
    now = timezone.now()
    with transaction.atomic():
        locked = AccessEvent.objects.select_for_update().filter(pk=event.pk, status="pending").first()
        if locked is None:
            return  # finished meanwhile by another delivery
        AccessEventFace.objects.bulk_create(
            AccessEventFace(
                event=locked,
                index=i,
                box=[round(float(v), 2) for v in face.box],
                landmarks=[[round(float(x), 2), round(float(y), 2)] for x, y in face.landmarks],
                score=float(face.score),
                size_px=float(face.quality.size_px),
                sharpness=float(face.quality.sharpness),
                yaw=float(face.quality.yaw),
                roll=float(face.quality.roll),
                nearest_person_id=m.nearest.person_id if m.nearest else None,
                distance=m.nearest.distance if m.nearest else None,
                runner_up_person_id=m.runner_up.person_id if m.runner_up else None,
                runner_up_distance=m.runner_up.distance if m.runner_up else None,
                decision=o.decision,
                reason=o.reason,
            )
            for i, (face, m, o) in enumerate(zip(faces, matches, outcome.faces, strict=True))
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
