"""Snapshot intake (web side): store a camera's photo with its pending event, queue it, wait for the answer.

The worker side is :mod:`access.snapshots.processing`; what the two say to each other (the job's name and
header, the timing stages, the decision channel) is :mod:`access.snapshots.channel`. This mirrors enrollment's
faces (intake) / embedding (work).

Waiting (``?wait=``) is event-driven: the waiting request subscribes to the event's Redis channel
(:class:`~access.snapshots.channel.DecisionListener`) and the worker publishes on it right after the decision
commits (:func:`~access.snapshots.channel.publish_decision`), so the answer leaves within a few milliseconds of
the decision. The database is read again every FACEACCESS_WAIT_RECHECK_SECONDS (a notification lost to a Redis
hiccup, or an event failed by a killed worker's main process, which publishes nothing), and polled as before
when Redis cannot be subscribed to at all. ``?wait`` stays the upper bound.

Every event records where its time went (``AccessEvent.timings``, milliseconds per stage, ``channel.STAGES``):
this module measures the web's part (the request's start comes from Django's ``request_started`` signal,
connected in :mod:`access.signals`) and hands the intake figures to the worker in the task message's headers;
the worker adds its own, and the waiting request adds the notification and its own total once it has the
answer.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from faceaccess.files import save_with_row
from faceaccess.jobs import MAX_REASON, send
from faceaccess.uploads import ImageUpload

from ..models import AccessEvent, Camera, faces_without_vectors, snapshot_upload_to
from .channel import HEADER, PROCESS_SNAPSHOT, DecisionListener

log = logging.getLogger(__name__)

_request = threading.local()  # per web thread: t0 (request start), intake (timings of the event it created)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000.0, 3)


def start_request_clock() -> None:
    """A web request starts (Django's ``request_started``): its clock, and no event made yet."""
    _request.t0 = time.perf_counter()
    _request.intake = None


def stop_request_clock() -> None:
    _request.t0 = None
    _request.intake = None


def _intake() -> dict[str, Any] | None:
    return getattr(_request, "intake", None)


def add_intake_header(sender: str | None, body: Any, headers: dict | None) -> None:
    """A snapshot job carries the web's intake timings (when this thread made the event) and when it was sent
    (Celery's ``before_task_publish``)."""
    if sender != PROCESS_SNAPSHOT or headers is None:
        return
    intake = _intake()
    args = body[0] if isinstance(body, tuple | list) and body and isinstance(body[0], list | tuple) else ()
    stages = {}
    if intake is not None and args and intake.get("event") == args[0]:
        stages = {k: intake[k] for k in ("parse", "store", "insert") if k in intake}
    headers[HEADER] = {**stages, "sent": time.time()}


def enqueue_snapshot(event_id: int, event: AccessEvent | None = None, credential: str | None = None) -> bool:
    """Queue the snapshot; if the broker refuses, the event ends ``failed`` with ``enqueue_failed`` set (also on
    ``event``, the caller's copy, when given) and False is returned.

    One try, bounded by FACEACCESS_BROKER_TIMEOUT (the Celery settings): a frozen broker costs the request about
    that long, not the whole ``?wait``. Not :meth:`faceaccess.jobs.RowTask.enqueue`: that one marks the row failed
    like any other failure, and an idempotent retry must tell "never queued" (queue it again) from "failed in the
    worker" (final).
    """
    intake = _intake()
    started = time.perf_counter()
    if intake is not None and intake.get("event") == event_id and "insert_started" in intake:
        intake["insert"] = round((started - intake.pop("insert_started")) * 1000.0, 3)
    try:
        sealed = credential or (intake.get("credential") if intake is not None and intake.get("event") == event_id
                                else None)  # a door's PIN / card, sealed (access.rules.credentials)
        # by name: the worker's code is never imported here
        send(PROCESS_SNAPSHOT, event_id, *((sealed,) if sealed else ()), priority=fair_priority(event_id, event))
        if intake is not None and intake.get("event") == event_id:
            intake["enqueue"] = _ms(started)
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


def fair_priority(event_id: int, event: AccessEvent | None) -> int:
    """The snapshot's place among the doors' queued work: 0 (first) when its camera has nothing else waiting, 3, 6,
    then 9 for its camera's 2nd, 3rd, 4th-and-later snapshot still pending. One camera sending more than the
    engine can decide then queues behind itself, not in front of every other door: a door with nothing waiting
    goes before its backlog (round robin between cameras, in effect)."""
    camera_id = event.camera_id if event is not None else (
        AccessEvent.objects.filter(pk=event_id).values_list("camera_id", flat=True).first())
    if camera_id is None:
        return 0
    ahead = AccessEvent.objects.filter(camera_id=camera_id, status=AccessEvent.Status.PENDING,
                                       pk__lt=event_id)[:3].count()
    return 3 * ahead


def requeue_if_never_queued(event: AccessEvent, credential: str | None = None) -> AccessEvent:
    """A retry of an event that failed only because it could not be queued: pending again and queued again
    (once, however many retries race in); any other event is returned as it is."""
    if event.status != AccessEvent.Status.FAILED or not event.enqueue_failed:
        return event
    with transaction.atomic():
        claimed = AccessEvent.objects.filter(
            pk=event.pk, status=AccessEvent.Status.FAILED, enqueue_failed=True
        ).update(status=AccessEvent.Status.PENDING, reason="", processed_at=None, enqueue_failed=False)
        if claimed:
            transaction.on_commit(lambda: enqueue_snapshot(event.pk, credential=credential))
    event.refresh_from_db()
    return event


def create_event(
    camera: Camera, upload: ImageUpload, key: str, captured_at: dt.datetime | None, credential: str | None = None
) -> tuple[AccessEvent, bool]:
    """Store the file and the row together (no row: no file) and queue the snapshot once the row commits.
    ``credential``: a PIN / card number sealed for the worker (access.rules.credentials), a task argument only,
    never stored.

    Returns ``(event, created)``: a retry that raced in with the same idempotency key gets the event of the
    first one and ``created=False``.
    """
    entered = time.perf_counter()
    t0 = getattr(_request, "t0", None)
    intake: dict[str, Any] = {} if t0 is None else {"parse": round((entered - t0) * 1000.0, 3)}
    if credential:
        intake["credential"] = credential
    _request.intake = intake
    event = AccessEvent(
        camera=camera, site_id=camera.site_id, received_at=timezone.now(), captured_at=captured_at,
        idempotency_key=key, image_width=upload.width, image_height=upload.height,
    )
    storage = AccessEvent._meta.get_field("snapshot").storage

    def save_row(name: str) -> AccessEvent:
        intake["store"] = _ms(entered)
        intake["insert_started"] = time.perf_counter()
        event.snapshot.name = name
        event.save()
        intake["event"] = event.pk
        transaction.on_commit(lambda: enqueue_snapshot(event.pk, event))  # after the commit: "insert" ends there
        return event

    try:
        return save_with_row(storage, snapshot_upload_to(event, f"snapshot.{upload.extension}"), upload.data,
                             save_row), True
    except IntegrityError:
        existing = AccessEvent.objects.filter(camera=camera, idempotency_key=key).first() if key else None
        if existing is None:
            raise
        return existing, False  # one event, not two


def _status(event_id: int) -> str | None:
    return AccessEvent.objects.filter(pk=event_id).values_list("status", flat=True).first()


def _wait_decided(event_id: int, seconds: float) -> tuple[str | None, dict | None]:
    """Wait until the event is no longer pending or ``seconds`` passed: (its status as last known, the
    worker's announcement when that is what ended the wait)."""
    deadline = time.monotonic() + seconds
    recheck = max(0.01, settings.FACEACCESS_WAIT_RECHECK_SECONDS)
    with DecisionListener(event_id) as listener:
        status = _status(event_id)  # subscribed first: a decision committed before this read is seen here
        delay = 0.02
        while status == AccessEvent.Status.PENDING:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if listener.ok:
                message = listener.wait(min(left, recheck))
                if message is not None and message.get("status", "") != AccessEvent.Status.PENDING:
                    return message.get("status"), message
            else:  # no Redis: poll, as before, with growing sleeps
                time.sleep(min(delay, left))
                delay = min(delay * 1.5, 0.2)
            status = _status(event_id)
    return status, None


def wait_for(event: AccessEvent, seconds: float) -> AccessEvent:
    """The event once decided, or still pending after ``seconds``."""
    intake = _intake()
    web: dict[str, Any] = {}
    if intake is not None and intake.get("event") == event.pk:
        # Also in the task's header, but a job run inline (eager) or an event whose worker never read the header
        # gets them here.
        web.update({k: intake[k] for k in ("parse", "store", "insert", "enqueue") if k in intake})
    if event.status == AccessEvent.Status.PENDING and seconds > 0:
        status, message = _wait_decided(event.pk, seconds)
        if message is not None:
            web["notify"] = round(max(0.0, time.time() - float(message.get("t", time.time()))) * 1000.0, 3)
            web.update({k: message[k] for k in ("commit",) if isinstance(message.get(k), int | float)})
            web["woken_by"] = "pubsub"
        elif status not in (None, AccessEvent.Status.PENDING):
            web["woken_by"] = "recheck"
        event.status = status
    if event.status == AccessEvent.Status.PENDING:
        return event
    fetched = time.perf_counter()
    event = AccessEvent.objects.select_related("person").prefetch_related(faces_without_vectors()).get(pk=event.pk)
    t0 = getattr(_request, "t0", None)
    if web and t0 is not None and intake is not None and intake.get("event") == event.pk:
        web["fetch"] = _ms(fetched)
        web["total"] = _ms(t0)
        event.timings = {**(event.timings or {}), **web}
        _add_timings(event.pk, web)
    return event


def _add_timings(event_id: int, stages: dict[str, Any]) -> None:
    """Merge the web's figures into the event's timings in one statement, committed without waiting for the WAL
    flush (``set_config(..., true)`` lasts for the statement's own transaction): a timing lost to a crash costs
    nothing, and the answer does not wait for a disk flush. The decision itself was committed durably."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {AccessEvent._meta.db_table} SET timings = COALESCE(timings, '{{}}'::jsonb) || %s::jsonb "
                "WHERE id = %s AND set_config('synchronous_commit', 'off', true) IS NOT NULL",
                [json.dumps(stages), event_id],
            )
    except Exception:
        log.exception("could not store the web timings of event %s", event_id)
