"""Snapshot intake (web side): store a camera's photo with its pending event, queue it, wait for the answer.

The worker side is :mod:`access.processing`; this mirrors enrollment's faces (intake) / embedding (work).
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.db import IntegrityError, transaction
from django.utils import timezone

from faceaccess.files import save_with_row
from faceaccess.jobs import MAX_REASON
from faceaccess.uploads import ImageUpload

from .models import AccessEvent, Camera, snapshot_upload_to

log = logging.getLogger(__name__)


def enqueue_snapshot(event_id: int, event: AccessEvent | None = None) -> bool:
    """Queue the snapshot; if the broker refuses, the event ends ``failed`` with ``enqueue_failed`` set (also on
    ``event``, the caller's copy, when given) and False is returned.

    One try, bounded by FACEACCESS_BROKER_TIMEOUT (the Celery settings): a frozen broker costs the request about
    that long, not the whole ``?wait``. Not :meth:`faceaccess.jobs.RowTask.enqueue`: that one marks the row failed
    like any other failure, and an idempotent retry must tell "never queued" (queue it again) from "failed in the
    worker" (final).
    """
    from .tasks import process_snapshot

    try:
        process_snapshot.delay(event_id)
        return True
    except Exception as exc:
        log.warning("could not queue snapshot %s: %s: %s", event_id, type(exc).__name__, exc)
        reason = f"could not queue the snapshot: {exc}"[:MAX_REASON]
        fields = dict(status=AccessEvent.Status.FAILED, reason=reason, processed_at=timezone.now(),
                      enqueue_failed=True)
        AccessEvent.objects.filter(pk=event_id, status=AccessEvent.Status.PENDING).update(**fields)
        if event is not None:
            for name, value in fields.items():
                setattr(event, name, value)
        return False


def requeue_if_never_queued(event: AccessEvent) -> AccessEvent:
    """A retry of an event that failed only because it could not be queued: pending again and queued again
    (once, however many retries race in); any other event is returned as it is."""
    if event.status != AccessEvent.Status.FAILED or not event.enqueue_failed:
        return event
    with transaction.atomic():
        claimed = AccessEvent.objects.filter(
            pk=event.pk, status=AccessEvent.Status.FAILED, enqueue_failed=True
        ).update(status=AccessEvent.Status.PENDING, reason="", processed_at=None, enqueue_failed=False)
        if claimed:
            transaction.on_commit(lambda: enqueue_snapshot(event.pk))
    event.refresh_from_db()
    return event


def create_event(
    camera: Camera, upload: ImageUpload, key: str, captured_at: dt.datetime | None
) -> tuple[AccessEvent, bool]:
    """Store the file and the row together (no row: no file) and queue the snapshot once the row commits.

    Returns ``(event, created)``: a retry that raced in with the same idempotency key gets the event of the
    first one and ``created=False``.
    """
    event = AccessEvent(
        camera=camera, site_id=camera.site_id, received_at=timezone.now(), captured_at=captured_at,
        idempotency_key=key, image_width=upload.width, image_height=upload.height,
    )
    storage = AccessEvent._meta.get_field("snapshot").storage

    def save_row(name: str) -> AccessEvent:
        event.snapshot.name = name
        event.save()
        transaction.on_commit(lambda: enqueue_snapshot(event.pk, event))
        return event

    try:
        return save_with_row(storage, snapshot_upload_to(event, f"snapshot.{upload.extension}"), upload.data,
                             save_row), True
    except IntegrityError:
        existing = AccessEvent.objects.filter(camera=camera, idempotency_key=key).first() if key else None
        if existing is None:
            raise
        return existing, False  # one event, not two


def wait_for(event: AccessEvent, seconds: float) -> AccessEvent:
    """The event once decided, or still pending after ``seconds``."""
    deadline = time.monotonic() + seconds
    delay = 0.02
    while event.status == AccessEvent.Status.PENDING and time.monotonic() < deadline:
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.2)
        event.status = AccessEvent.objects.filter(pk=event.pk).values_list("status", flat=True).first()
    if event.status != AccessEvent.Status.PENDING:
        event = AccessEvent.objects.select_related("person").prefetch_related("faces").get(pk=event.pk)
    return event
