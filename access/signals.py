"""Every signal handler of access, connected once by :meth:`access.apps.AccessConfig.ready` (in the web process
and in the workers). Each one only hands over to the module that does the work."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import before_task_publish, task_prerun, worker_ready
from django.core.signals import request_finished, request_started
from django.db import connections
from django.db.models.signals import m2m_changed, post_delete
from django.dispatch import receiver

from faceaccess.files import delete_file_on_commit

from .models import AccessEvent, AccessGrant
from .snapshots import intake

log = logging.getLogger(__name__)


@receiver(request_started, dispatch_uid="access.signals.request_clock")
def _request_started(**kwargs: object) -> None:
    intake.start_request_clock()


@receiver(request_finished, dispatch_uid="access.signals.request_clock_end")
def _request_finished(**kwargs: object) -> None:
    intake.stop_request_clock()


@before_task_publish.connect(dispatch_uid="access.signals.intake_header")
def _add_intake_header(sender: str | None = None, body: Any = None, headers: dict | None = None,
                       **kwargs: object) -> None:
    intake.add_intake_header(sender, body, headers)


@receiver(post_delete, sender=AccessEvent, dispatch_uid="access.signals.snapshot_file")
def _event_deleted(sender: type[AccessEvent], instance: AccessEvent, **kwargs: object) -> None:
    delete_file_on_commit(instance.snapshot)


@task_prerun.connect(dispatch_uid="access.signals.reuse_connections")
def _check_connections(task: object = None, **kwargs: object) -> None:
    """Every task in a worker keeps its process's (thread's) database connection, checked as Django checks one
    at the start of a web request (CELERY_DB_REUSE_MAX in the settings): one older than CONN_MAX_AGE is closed,
    a broken one is replaced on its first query. Not for a task run inline (eager) inside somebody's transaction."""
    if getattr(getattr(task, "request", None), "is_eager", False):
        return
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


@worker_ready.connect(dispatch_uid="access.signals.switch_on_start")
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


@receiver(m2m_changed, sender=AccessGrant, dispatch_uid="access.signals.grants_added")
def log_grants_added(sender, instance, action: str, reverse: bool, pk_set: set | None, **kwargs: Any) -> None:
    """``person.sites.add/set`` creates grants in bulk, without the save signal the audit trail listens to (a
    removal is a per-row delete and is logged): log each new grant as auditlog would log its creation."""
    if action != "post_add" or not pk_set:
        return
    from auditlog.diff import model_instance_diff
    from auditlog.models import LogEntry

    people, sites = ([instance.pk], pk_set) if reverse else (pk_set, [instance.pk])
    for grant in AccessGrant.objects.filter(person_id__in=people, site_id__in=sites):
        LogEntry.objects.log_create(grant, action=LogEntry.Action.CREATE, changes=model_instance_diff(None, grant))
