"""Celery tasks of access: thin wrappers over :mod:`access.processing` (routed to the engine workers'
``gpu`` queue by CELERY_TASK_ROUTES)."""

from __future__ import annotations

from celery import shared_task

from faceaccess.jobs import TASK_OPTIONS, RowTask

from . import processing


class SnapshotTask(RowTask):
    model_path = "access.AccessEvent"
    label = "snapshot"


@shared_task(base=SnapshotTask, **TASK_OPTIONS)
def process_snapshot(event_id: int) -> str:
    return processing.process_snapshot(event_id)
