"""Starting, stopping and making a switch of the embedder: the state machine of recognition's EmbedderState row
(reembedding -> switched, or ready -> confirmed / cancelled, or failed)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from enrollment.models import FaceEmbedding, FaceImage
from faceaccess.jobs import send
from recognition.active import configured_embedder_name, forget, pin_active, state_row
from recognition.models import EmbedderState
from recognition.pipelines import current_embedder_name

from ..models import Site
from ..thresholds import model_default_threshold, remap_threshold
from .progress import ENROLLED, progress

log = logging.getLogger(__name__)
State = EmbedderState.State

CHUNK = 8  # photos per task: ~0.5 s of facenet on one CPU thread, the longest a door snapshot waits behind one
REEMBED_CHUNK = "access.tasks.reembed_chunk"  # the Celery task (access.tasks), queued by name


class SwitchError(Exception):
    """Why a switch cannot be started, confirmed or cancelled: a stable code, words, an HTTP status."""

    def __init__(self, code: str, detail: str, status: int = 400):
        super().__init__(detail)
        self.code, self.detail, self.status = code, detail, status


def start(target: str, by: str = "") -> EmbedderState:
    """Start re-embedding every enrolled photo with ``target``; the current model keeps deciding meanwhile."""
    from recognition.engine.registry import WeightsError, get_spec

    try:
        spec = get_spec(target)
    except WeightsError as exc:
        raise SwitchError("unknown_model", str(exc)) from None
    if spec.kind != "embedder":
        raise SwitchError("unknown_model", f"{target} is not an embedder")
    if model_default_threshold(target) is None:
        raise SwitchError("no_threshold", f"{target} has no measured identification threshold on its model card, "
                                          "so no site would have a threshold for it")
    pin_active()
    with transaction.atomic():
        row = state_row(lock=True)
        if row.in_progress:
            if row.target_name == target:
                return row
            raise SwitchError("switch_in_progress", f"a switch to {row.target_name} is {row.state}: "
                                                    "cancel it first", 409)
        if target == row.active_name:
            raise SwitchError("already_active", f"{target} is already the active model")
        row.target_name, row.target_version = target, spec.version
        row.state, row.run = State.REEMBEDDING, row.run + 1
        row.total = row.done = row.failed = 0
        row.failures, row.extra = [], {**_kept(row.extra), "chunk": CHUNK}
        row.message = f"re-embedding every enrolled photo with {target}; {row.active_name} decides meanwhile"
        row.started_by, row.started_at, row.finished_at = by[:150], timezone.now(), None
        row.save()
        run = row.run
        transaction.on_commit(lambda: enqueue_chunk(run))
    log.info("model switch %s -> %s started by %s (run %d)", row.active_name, target, by or "?", run)
    progress(run)
    return state_row()


def cancel(by: str = "") -> EmbedderState:
    """Stop a switch under way; the active model stays (the target's embeddings made so far are kept)."""
    with transaction.atomic():
        row = state_row(lock=True)
        if not row.in_progress:
            raise SwitchError("no_switch", "no switch is under way")
        row.state, row.finished_at = State.CANCELLED, timezone.now()
        row.message = f"cancelled by {by or '?'}; {row.active_name} stays the active model"
        row.save()
    log.info("model switch to %s cancelled by %s", row.target_name, by or "?")
    return row


def confirm(by: str = "") -> EmbedderState:
    """Switch although some photos failed with the target (the row is ``ready``)."""
    row = state_row()
    if row.state != State.READY:
        raise SwitchError("not_ready", f"the switch is {row.state}: only a switch waiting in 'ready' can be "
                                       "confirmed", 409)
    return switch(row.run, by or "?")


def resume() -> EmbedderState | None:
    """Queue the re-embedding again after a worker restart (its chain of chunks may have died with it): a new
    run number, so a chunk of the old chain still in the queue stops."""
    with transaction.atomic():
        row = state_row(lock=True)
        if row.state != State.REEMBEDDING:
            return None
        row.run += 1
        row.save(update_fields=["run", "updated_at"])
        run = row.run
        transaction.on_commit(lambda: enqueue_chunk(run))
    return row


def switch_on_worker_start() -> str:
    """The engine worker starts: pin the active model, resume a switch under way, and start one when
    FACEACCESS_EMBEDDER was changed since the last start to a model that is not the active one."""
    active = pin_active()
    configured = configured_embedder_name()
    with transaction.atomic():
        row = state_row(lock=True)
        seen = row.extra.get("configured")
        row.extra = {**row.extra, "configured": configured}
        row.save(update_fields=["extra", "updated_at"])
    if row.state == State.REEMBEDDING:
        resume()
        return f"resumed the switch to {row.target_name}"
    if seen is not None and configured != seen and configured != active and not row.in_progress:
        log.warning("FACEACCESS_EMBEDDER changed from %s to %s: switching the active model %s to it in the "
                    "background (%s decides until every photo is re-embedded)", seen, configured, active, active)
        start(configured, by="FACEACCESS_EMBEDDER")
        return f"started a switch to {configured}"
    return "nothing to do"


def _kept(extra: dict) -> dict:
    return {k: v for k, v in (extra or {}).items() if k == "configured"}


def enqueue_chunk(run: int, countdown: float | None = None) -> None:
    send(REEMBED_CHUNK, run, countdown=countdown)  # by name: the tasks module sits above this package


def switch(run: int, by: str) -> EmbedderState:
    """In one transaction: the target becomes the active model and every site's threshold is remapped."""
    now = timezone.now()
    with transaction.atomic():
        row = state_row(lock=True)
        if row.run != run or not row.in_progress:
            raise SwitchError("not_ready", f"the switch is {row.state}", 409)
        old, new = row.active_name or current_embedder_name(), row.target_name
        for site in Site.objects.select_for_update().order_by("pk"):
            remap_threshold(site, old, new, now)
        # A photo that no longer enrolls must not match through a target embedding kept from an earlier run.
        FaceEmbedding.objects.filter(model_name=new).exclude(face_image__status=ENROLLED).delete()
        row.previous_name, row.active_name, row.active_version = old, new, row.target_version
        row.state, row.switched_at, row.finished_at = State.SWITCHED, now, row.finished_at or now
        row.message = f"switched from {old} to {new} ({by})"
        row.save()
        transaction.on_commit(_after_switch)
    forget()
    log.warning("active embedder switched from %s to %s (%s)", old, new, by)
    return row


def _after_switch() -> None:
    """Photos whose faces were found by the old model only (several faces, nobody chose yet) are looked at
    again with the new one, so a person can still choose among them; and a photo enrolled by the old model
    in the moment of the switch gets its new embedding."""
    from enrollment.tasks import embed_face_image

    forget()
    model = current_embedder_name()
    stale = FaceImage.objects.filter(status=FaceImage.Status.SEVERAL_FACES).values_list("pk", flat=True)
    for pk in [*stale, *_missing_any_version(model)]:
        embed_face_image.delay(pk)


def _missing_any_version(model: str) -> list[int]:
    has = FaceEmbedding.objects.filter(face_image=OuterRef("pk"), model_name=model)
    return list(FaceImage.objects.filter(status=ENROLLED).exclude(Exists(has)).values_list("pk", flat=True))
