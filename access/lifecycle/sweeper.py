"""The sweeper (the ``sweep`` task of access.tasks, run by Celery beat every FACEACCESS_SWEEP_EVERY_SECONDS): no
accepted job is left behind.

A snapshot or a face photo still ``pending`` FACEACCESS_SWEEP_AFTER_SECONDS after it arrived lost its message
(a broker that died between publish and persist, a publish that timed out) or sits behind a long queue; one
that could not be queued at all ended ``failed`` with ``enqueue_failed``. Either way it is queued again (a
duplicate of a message still in the queue is harmless: the worker skips a job that is no longer pending), and
after FACEACCESS_SWEEP_MAX_ATTEMPTS re-queues it ends ``failed`` with the reason.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from enrollment.models import FaceImage
from enrollment.tasks import embed_face_image
from faceaccess.jobs import bump, fail_if_unfinished, send

from ..models import AccessEvent
from ..snapshots.channel import PROCESS_SNAPSHOT

log = logging.getLogger(__name__)


def _give_up(model, pk: int, label: str, attempts: int) -> None:
    fail_if_unfinished(model, pk, f"not processed after {attempts} re-queues: the worker never finished this "
                                  f"{label}; check the worker's log")


def sweep(now: dt.datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    before = now - dt.timedelta(seconds=settings.FACEACCESS_SWEEP_AFTER_SECONDS)
    counts = {"requeued": 0, "failed": 0}
    stuck_events = AccessEvent.objects.filter(received_at__lt=before).filter(
        Q(status=AccessEvent.Status.PENDING) | Q(status=AccessEvent.Status.FAILED, enqueue_failed=True))
    stuck_faces = FaceImage.objects.filter(status=FaceImage.Status.PENDING, uploaded_at__lt=before)
    for model, label, task, rows in (
        (AccessEvent, "snapshot", PROCESS_SNAPSHOT, stuck_events.values_list("pk", flat=True)[:500]),
        (FaceImage, "photo", embed_face_image.name, stuck_faces.values_list("pk", flat=True)[:500]),
    ):
        for pk in rows:
            attempts = bump(f"sweeps:{model._meta.label}:{pk}")
            if attempts is None:
                return counts  # Redis does not answer: nothing can be queued either; next round
            if attempts > settings.FACEACCESS_SWEEP_MAX_ATTEMPTS:
                _give_up(model, pk, label, attempts - 1)
                counts["failed"] += 1
                continue
            if model is AccessEvent:  # back to pending if it had failed to queue
                model.objects.filter(pk=pk, status="failed", enqueue_failed=True).update(
                    status="pending", reason="", processed_at=None, enqueue_failed=False)
            try:
                send(task, pk)  # by name: the tasks module sits above this one
            except Exception as exc:
                log.warning("sweeper: could not queue %s %s: %s", label, pk, exc)
                return counts
            counts["requeued"] += 1
    if any(counts.values()):
        log.info("sweeper: %(requeued)d re-queued, %(failed)d given up", counts)
    return counts
