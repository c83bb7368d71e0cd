"""Celery tasks of access: thin wrappers over :mod:`access.processing` (routed to the engine workers'
``gpu`` queue by CELERY_TASK_ROUTES)."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import task_prerun, worker_ready
from django.db import connections

from faceaccess.jobs import TASK_OPTIONS, RowTask

from . import processing
from .snapshots import HEADER

log = logging.getLogger(__name__)


class SnapshotTask(RowTask):
    model_path = "access.AccessEvent"
    label = "snapshot"


@shared_task(base=SnapshotTask, **TASK_OPTIONS)
def process_snapshot(event_id: int) -> str:
    # The web's intake timings travel in a message header (access.snapshots.HEADER), not in the arguments.
    request = process_snapshot.request
    return processing.process_snapshot(event_id, request.get(HEADER) if request is not None else None)


@shared_task(name="access.tasks.apply_retention")
def apply_retention() -> dict[str, int]:
    """Daily (Celery beat): delete door snapshots past each site's retention windows."""
    from .retention import apply_retention as run

    report = run()
    return {site: counts["snapshots"] for site, counts in report.sites.items()}


@task_prerun.connect(dispatch_uid="access.tasks.reuse_connections")
def _check_connections(task: object = None, **kwargs: object) -> None:
    """Every task in a worker keeps its process's (thread's) database connection, checked as Django checks one
    at the start of a web request (CELERY_DB_REUSE_MAX in the settings): one older than CONN_MAX_AGE is closed,
    a broken one is replaced on its first query. Not for a task run inline (eager) inside somebody's transaction."""
    if getattr(getattr(task, "request", None), "is_eager", False):
        return
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


# A switch of the embedder (access.model_switch): each chunk embeds a few photos and queues the next, so door
# snapshots queued meanwhile on the same engine queue are served between chunks.
@shared_task(**TASK_OPTIONS)
def reembed_chunk(run: int) -> str:
    from .model_switch import run_chunk

    return run_chunk(run)


@worker_ready.connect(dispatch_uid="access.tasks.switch_on_start")
def _switch_on_start(sender: object = None, **kwargs: object) -> None:
    """An engine worker starts: pin the active model, resume a switch under way, or start one when
    FACEACCESS_EMBEDDER was changed (access.model_switch.switch_on_worker_start)."""
    from recognition.pipelines import ENGINE_QUEUE

    try:
        consumed = set(sender.app.amqp.queues.consume_from or sender.app.amqp.queues)  # type: ignore[union-attr]
    except AttributeError:
        consumed = {ENGINE_QUEUE}
    if ENGINE_QUEUE not in consumed:
        return
    from .model_switch import switch_on_worker_start

    try:
        log.info("model switch at worker start: %s", switch_on_worker_start())
    except Exception:
        log.exception("checking FACEACCESS_EMBEDDER against the active model failed")
    finally:
        connections.close_all()  # opened in the worker's main process: never share it with pool children
