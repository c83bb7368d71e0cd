"""Rows that stand for a background job (a snapshot to decide, a photo to embed) and the Celery task
base class that keeps them honest: an accepted row ends finished or ``failed`` with a reason, never
silently pending.

acks_late + reject_on_worker_lost: a worker killed mid-task has its message redelivered; the soft time
limit raises inside the task, which marks the row failed; a hard time limit kills the child, and
``on_failure`` (run by the worker's main process) marks the row instead.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from billiard.exceptions import TimeLimitExceeded
from celery import Task, current_app
from django.apps import apps
from django.conf import settings
from django.db import models
from django.utils import timezone

log = logging.getLogger(__name__)

PENDING, PROCESSING, FAILED = "pending", "processing", "failed"
MAX_REASON = 2000
TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}


def send(task_name: str, *args: Any, countdown: float | None = None, priority: int | None = None) -> None:
    """Queue a task by its registered name, for a module that must not import the task's own (an import that
    would run upward). Raises what the broker raises.

    The task object itself publishes, exactly as ``task.delay`` would (eager mode, its routing, its
    ``ignore_result``): Celery's ``send_task`` fallback for a name it has not registered yet would also subscribe
    to the result backend, one more Redis round trip without a timeout. So the task's module is imported first
    when this process has not registered it (a web process never imports the worker's tasks otherwise).
    ``priority``: 0 (first, the default) to 9 (last) within the task's queue (see QUEUE_PRIORITIES)."""
    tasks = current_app.tasks
    if task_name not in tasks:
        importlib.import_module(task_name.rpartition(".")[0])
    tasks[task_name].apply_async(args, countdown=countdown, priority=priority)


def mark_failed(model: type[models.Model], pk: int, reason: str, **extra: Any) -> None:
    model.objects.filter(pk=pk).update(status=FAILED, reason=reason[:MAX_REASON], **extra)


def fail_if_unfinished(model: type[models.Model], pk: int, reason: str) -> None:
    """Mark a row failed unless it already finished (the task's own handler usually got there first)."""
    model.objects.filter(pk=pk, status__in=[PENDING, PROCESSING]).update(
        status=FAILED, reason=reason[:MAX_REASON], processed_at=timezone.now()
    )


def failure_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeLimitExceeded):
        limit = exc.args[0] if exc.args else "?"
        return f"hard time limit exceeded ({limit} s): the worker stopped the task"
    return f"{type(exc).__name__}: {exc}"


class RowTask(Task):
    """A task whose first argument is the pk of a ``model_path`` row with ``status`` and ``reason``."""

    model_path = ""  # "app_label.Model"
    label = ""  # what the row holds, for messages

    def enqueue(self, pk: int) -> None:
        """Queue the task for row ``pk``; if the broker refuses, mark the row failed instead of leaving it
        pending forever."""
        try:
            self.delay(pk)
        except Exception as exc:
            log.exception("could not queue %s %s", self.label, pk)
            fail_if_unfinished(apps.get_model(self.model_path), pk, f"could not queue the {self.label}: {exc}")

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        if args:
            fail_if_unfinished(apps.get_model(self.model_path), args[0], failure_reason(exc))

    def __call__(self, *args, **kwargs):
        # A message that keeps killing its worker (acks_late + reject_on_worker_lost) would come back forever:
        # after FACEACCESS_MAX_DELIVERIES deliveries the row ends failed instead.
        if args and not self.request.is_eager:
            count = bump(f"deliveries:{self.model_path}:{args[0]}")
            if count is not None and count > settings.FACEACCESS_MAX_DELIVERIES:
                fail_if_unfinished(apps.get_model(self.model_path), args[0],
                                   f"gave up after {count - 1} deliveries: the {self.label} kept failing or "
                                   "stopping its worker")
                return FAILED
        return super().__call__(*args, **kwargs)


def bump(name: str, ttl_s: int = 24 * 3600) -> int | None:
    """Increment a counter kept in Redis (shared by every process) for a day; None when Redis does not answer."""
    from . import redis_conn

    try:
        with redis_conn.client().pipeline() as pipe:
            pipe.incr(f"faceaccess:{name}")
            pipe.expire(f"faceaccess:{name}", ttl_s)
            count, _ = pipe.execute()
        return int(count)
    except Exception as exc:
        log.warning("counter %s not kept (%s: %s)", name, type(exc).__name__, exc)
        return None
