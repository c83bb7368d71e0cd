"""The background work of a switch: a few photos per Celery task on the engine queue (door snapshots queued
meanwhile are served between chunks), one chunk at a time whatever the number of engine workers."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import connection
from django.utils import timezone

from enrollment import embedding
from enrollment.models import FaceImage
from recognition.active import state_row
from recognition.models import EmbedderState

from .impostors import reembed_impostors
from .progress import missing, progress, update
from .state import CHUNK, SwitchError, enqueue_chunk, switch

log = logging.getLogger(__name__)
State = EmbedderState.State

LOCK_KEY = 0x46410B03  # PostgreSQL advisory lock: one chunk at a time, whatever the number of engine workers
BUSY_RETRY_S = 0.5
SETTLE_RETRY_S = 1.0  # photos still being processed when the last pass ran: look again this much later
SETTLE_WINDOW_S = 600  # ...unless they were uploaded longer ago than this (the sweeper deals with those)
WHY = {FaceImage.Status.NO_FACE: "the new model found no usable face",
       FaceImage.Status.SEVERAL_FACES: "the new model found several faces and none dominates",
       FaceImage.Status.FAILED: "the photo could not be read"}


def run_chunk(run: int, requeue: bool = True) -> str:
    """Embed the next few photos with the target; returns "more", "waiting", "switched", "ready", "busy" or
    "stopped". ``requeue``: queue the next chunk (the Celery task); tests call it in a loop instead."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
        if not cur.fetchone()[0]:
            if requeue:  # another chunk (or a test holding the lock) is at it: try again shortly
                enqueue_chunk(run, BUSY_RETRY_S)
            return "busy"
    try:
        outcome = _chunk(run)
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
    if requeue and outcome in ("more", "waiting"):
        enqueue_chunk(run, SETTLE_RETRY_S if outcome == "waiting" else None)
    return outcome


def _chunk(run: int) -> str:
    row = state_row()
    if row.run != run or row.state != State.REEMBEDDING:
        return "stopped"
    target = row.target_name
    try:
        from recognition.pipelines import get_pipeline

        version = get_pipeline(target).embedder_version
    except Exception as exc:  # weights missing or corrupt: nothing can be re-embedded, the active model stays
        log.exception("model switch: cannot load %s", target)
        update(run, state=State.FAILED, finished_at=timezone.now(),
                message=f"cannot load {target}: {type(exc).__name__}: {exc}")
        return "stopped"
    tried = {f["image"] for f in row.failures}
    batch = list(missing(target, version).exclude(pk__in=tried).order_by("pk")
                 .values_list("pk", "person_id")[: int(row.extra.get("chunk") or CHUNK)])
    failures = list(row.failures)
    for pk, person_id in batch:
        reason = _embed(pk, target)
        if reason:
            failures.append({"image": pk, "person": person_id, "reason": reason[:300]})
    if not progress(run, failures, target_version=version):
        return "stopped"  # cancelled (or superseded) while this chunk ran
    if batch:
        return "more"
    if _unsettled():
        return "waiting"
    impostors = reembed_impostors(row.active_name, target)
    update(run, extra={**row.extra, **impostors})
    if failures:
        update(run, state=State.READY, finished_at=timezone.now(),
                message=f"{len(failures)} photo(s) could not be embedded with {target}: switch anyway or cancel")
        return "ready"
    try:
        switch(run, "automatic (every photo re-embedded)")
    except SwitchError:
        return "stopped"  # cancelled in the last moment
    return "switched"


def _embed(pk: int, target: str) -> str:
    """Embed one photo with the target; the reason it failed, or "" ("gone": deleted meanwhile, no failure)."""
    try:
        outcome = embedding.embed_face_image(pk, target)
    except Exception as exc:  # one bad photo never stops the run
        return f"{type(exc).__name__}: {exc}"
    return "" if outcome in ("embedded", "gone") else WHY.get(outcome, str(outcome))


def _unsettled() -> bool:
    """Photos uploaded lately and not processed yet: the last pass waits for them (they will be enrolled with
    the active model, and then need the target's embedding too)."""
    recent = timezone.now() - dt.timedelta(seconds=SETTLE_WINDOW_S)
    return FaceImage.objects.filter(status__in=[FaceImage.Status.PENDING, FaceImage.Status.PROCESSING],
                                    uploaded_at__gte=recent).exists()
