"""Snapshot intake (web side): store a camera's photo with its pending event, queue it, wait for the answer.

The worker side is :mod:`access.processing`; this mirrors enrollment's faces (intake) / embedding (work).
"""

from __future__ import annotations

import datetime as dt
import time

from django.db import IntegrityError, transaction
from django.utils import timezone

from faceaccess.files import save_with_row
from faceaccess.uploads import ImageUpload

from .models import AccessEvent, Camera, snapshot_upload_to


def enqueue_snapshot(event_id: int) -> None:
    from .tasks import process_snapshot

    process_snapshot.enqueue(event_id)


def create_event(camera: Camera, upload: ImageUpload, key: str, captured_at: dt.datetime | None) -> AccessEvent:
    """Store the file and the row together (no row: no file) and queue the snapshot once the row commits.

    A retry that raced in with the same idempotency key gets the event of the first one.
    """
    event = AccessEvent(
        camera=camera, site_id=camera.site_id, received_at=timezone.now(), captured_at=captured_at,
        idempotency_key=key, image_width=upload.width, image_height=upload.height,
    )
    storage = AccessEvent._meta.get_field("snapshot").storage

    def save_row(name: str) -> AccessEvent:
        event.snapshot.name = name
        event.save()
        transaction.on_commit(lambda: enqueue_snapshot(event.pk))
        return event

    try:
        return save_with_row(storage, snapshot_upload_to(event, f"snapshot.{upload.extension}"), upload.data,
                             save_row)
    except IntegrityError:
        existing = AccessEvent.objects.filter(camera=camera, idempotency_key=key).first() if key else None
        if existing is None:
            raise
        return existing  # one event, not two


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
