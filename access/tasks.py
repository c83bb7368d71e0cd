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


@shared_task(name="access.tasks.apply_retention")
def apply_retention() -> dict[str, int]:
    """Daily (Celery beat): delete door snapshots past each site's retention windows."""
    from .retention import apply_retention as run

    report = run()
    return {site: counts["snapshots"] for site, counts in report.sites.items()}
