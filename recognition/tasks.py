"""Celery tasks for the engine worker: thin wrappers around the worker-side code.

They run on the ``gpu`` queue through CELERY_TASK_ROUTES (``recognition.tasks.*``).

acks_late + reject_on_worker_lost: a worker killed mid-task has its message
redelivered; the soft time limit (CELERY_TASK_SOFT_TIME_LIMIT) raises inside the
task, which marks the row failed with a reason; a hard time limit kills the
child, and ``on_failure`` (run by the worker's main process) marks it instead.
An accepted snapshot never just disappears.
"""

from __future__ import annotations

import logging

from billiard.exceptions import TimeLimitExceeded
from celery import Task, shared_task

from enrollment import embedding

from . import worker

_options = {"acks_late": True, "reject_on_worker_lost": True}
log = logging.getLogger(__name__)


class _MarksRowFailed(Task):
    """Whatever ended the task (even a hard time limit), an unfinished row ends ``failed`` with the reason."""

    model_path = ""
    label = ""  # what the row holds, for messages

    def enqueue(self, pk: int) -> None:
        """Queue the task for row ``pk``; if the broker refuses, mark the row failed instead of
        leaving it pending forever."""
        from django.apps import apps

        try:
            self.delay(pk)
        except Exception as exc:
            log.exception("could not queue %s %s", self.label, pk)
            worker.fail_if_unfinished(apps.get_model(self.model_path), pk, f"could not queue the {self.label}: {exc}")

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        from django.apps import apps

        if args:
            worker.fail_if_unfinished(apps.get_model(self.model_path), args[0], _reason(exc))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeLimitExceeded):
        limit = exc.args[0] if exc.args else "?"
        return f"hard time limit exceeded ({limit} s): the worker stopped the task"
    return f"{type(exc).__name__}: {exc}"


class SnapshotTask(_MarksRowFailed):
    model_path = "recognition.AccessEvent"
    label = "snapshot"


class FaceImageTask(_MarksRowFailed):
    model_path = "enrollment.FaceImage"
    label = "image"


@shared_task(base=SnapshotTask, **_options)
def process_snapshot(event_id: int) -> str:
    return worker.process_snapshot(event_id)


@shared_task(base=FaceImageTask, **_options)
def embed_face_image(face_image_id: int, embedder: str | None = None) -> str:
    return embedding.embed_face_image(face_image_id, embedder)


# A whole gallery: far longer than one snapshot; each image is guarded inside.
@shared_task(**_options, soft_time_limit=23 * 3600, time_limit=24 * 3600)
def reembed_all(model: str | None = None) -> dict[str, int]:
    """Embed every face image with ``model`` (default: the current one); returns counts per outcome."""
    return embedding.reembed_all(model)
