"""Switching the embedder without breaking every door (issue 11, part 3).

A switch re-embeds every enrolled photo with the target model in the background (``run_chunk``: a few photos
per Celery task on the engine queue, so door snapshots queued meanwhile are served between chunks) while the
active model keeps deciding. Photos enrolled during the run are caught by the last pass (it ends only when no
enrolled photo lacks a target embedding and none is still being processed). Then:

- no failure: the switch happens at once (``_switch``: one transaction makes the target active and remaps every
  site's threshold, see :func:`remap_threshold`);
- failures: the row waits in ``ready`` listing them and the people who would lose their last usable photo,
  until an admin switches anyway (:func:`confirm`) or cancels (:func:`cancel`).

Embeddings of the old model are kept (switching back only embeds what is missing) unless pruned
(:func:`prune_other_models`). The row is recognition's EmbedderState; the door path reads it through
``recognition.active`` (cached a couple of seconds per process).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from enrollment import embedding
from enrollment.models import FaceEmbedding, FaceImage, Person
from recognition.active import configured_embedder_name, forget, pin_active, state_row
from recognition.models import EmbedderState
from recognition.pipelines import current_embedder_name

from .models import ImpostorExample, Site, model_default_threshold

log = logging.getLogger(__name__)
State = EmbedderState.State
ENROLLED = FaceImage.Status.ENROLLED

CHUNK = 8  # photos per task: ~0.5 s of facenet on one CPU thread, the longest a door snapshot waits behind one
LOCK_KEY = 0x46410B03  # PostgreSQL advisory lock: one chunk at a time, whatever the number of engine workers
BUSY_RETRY_S = 0.5
SETTLE_RETRY_S = 1.0  # photos still being processed when the last pass ran: look again this much later
SETTLE_WINDOW_S = 600  # ...unless they were uploaded longer ago than this (the sweeper deals with those)
WHY = {FaceImage.Status.NO_FACE: "the new model found no usable face",
       FaceImage.Status.SEVERAL_FACES: "the new model found several faces and none dominates",
       FaceImage.Status.FAILED: "the photo could not be read"}


class SwitchError(Exception):
    """Why a switch cannot be started, confirmed or cancelled: a stable code, words, an HTTP status."""

    def __init__(self, code: str, detail: str, status: int = 400):
        super().__init__(detail)
        self.code, self.detail, self.status = code, detail, status


# ---------------------------------------------------------------- starting, stopping -----------------------

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
        transaction.on_commit(lambda: _enqueue(run))
    log.info("model switch %s -> %s started by %s (run %d)", row.active_name, target, by or "?", run)
    _progress(run)
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
    return _switch(row.run, by or "?")


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
        transaction.on_commit(lambda: _enqueue(run))
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


def _enqueue(run: int, countdown: float | None = None) -> None:
    from .tasks import reembed_chunk

    reembed_chunk.apply_async((run,), countdown=countdown)


# ---------------------------------------------------------------- the background work ----------------------

def _missing(model: str, version: str):
    """Enrolled photos without an embedding of ``model``/``version``."""
    has = FaceEmbedding.objects.filter(face_image=OuterRef("pk"), model_name=model, model_version=version)
    return FaceImage.objects.filter(status=ENROLLED).exclude(Exists(has))


def run_chunk(run: int, requeue: bool = True) -> str:
    """Embed the next few photos with the target; returns "more", "waiting", "switched", "ready", "busy" or
    "stopped". ``requeue``: queue the next chunk (the Celery task); tests call it in a loop instead."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
        if not cur.fetchone()[0]:
            if requeue:  # another chunk (or a test holding the lock) is at it: try again shortly
                _enqueue(run, BUSY_RETRY_S)
            return "busy"
    try:
        outcome = _chunk(run)
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
    if requeue and outcome in ("more", "waiting"):
        _enqueue(run, SETTLE_RETRY_S if outcome == "waiting" else None)
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
        _update(run, state=State.FAILED, finished_at=timezone.now(),
                message=f"cannot load {target}: {type(exc).__name__}: {exc}")
        return "stopped"
    tried = {f["image"] for f in row.failures}
    batch = list(_missing(target, version).exclude(pk__in=tried).order_by("pk")
                 .values_list("pk", "person_id")[: int(row.extra.get("chunk") or CHUNK)])
    failures = list(row.failures)
    for pk, person_id in batch:
        reason = _embed(pk, target)
        if reason:
            failures.append({"image": pk, "person": person_id, "reason": reason[:300]})
    if not _progress(run, failures, target_version=version):
        return "stopped"  # cancelled (or superseded) while this chunk ran
    if batch:
        return "more"
    if _unsettled():
        return "waiting"
    impostors = _reembed_impostors(row.active_name, target)
    _update(run, extra={**row.extra, **impostors})
    if failures:
        _update(run, state=State.READY, finished_at=timezone.now(),
                message=f"{len(failures)} photo(s) could not be embedded with {target}: switch anyway or cancel")
        return "ready"
    try:
        _switch(run, "automatic (every photo re-embedded)")
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


def _progress(run: int, failures: list | None = None, **fields: Any) -> bool:
    """Recount total / done / failed (photos added or deleted meanwhile count as they are now)."""
    row = state_row()
    version = fields.get("target_version") or row.target_version
    failures = row.failures if failures is None else failures
    enrolled = set(FaceImage.objects.filter(status=ENROLLED).values_list("pk", flat=True))
    failures = [f for f in failures if f["image"] in enrolled]  # a deleted or re-processed photo no longer fails
    total = len(enrolled)
    missing = _missing(row.target_name, version).count()
    return _update(run, total=total, done=total - missing, failed=len(failures), failures=failures, **fields)


def _update(run: int, **fields: Any) -> bool:
    """Write progress only while this run is the one under way (a cancel or a newer run wins)."""
    fields["updated_at"] = timezone.now()
    return bool(EmbedderState.objects.filter(pk=1, run=run, state=State.REEMBEDDING).update(**fields))


def _reembed_impostors(old: str, target: str) -> dict[str, int]:
    """Faces reviewers marked "not <person>" get a target embedding from their event's snapshot (the face whose
    box overlaps the stored one most); without the snapshot (retention deleted it) they stay the old model's."""
    from recognition.pipelines import get_pipeline, read_image

    from .models import AccessEventFace

    pipeline = get_pipeline(target)
    twins = ImpostorExample.objects.filter(model_name=target, event_face_id=OuterRef("event_face_id"),
                                           person_id=OuterRef("person_id"))
    done = left = 0
    for example in ImpostorExample.objects.filter(model_name=old).exclude(Exists(twins)).select_related(
            "event_face__event"):
        face: AccessEventFace | None = example.event_face
        try:
            if face is None or not face.event.snapshot or not face.box:
                raise LookupError("no snapshot")
            found = pipeline.faces([read_image(face.event.snapshot)], embed=True)[0]
            best = max(found, key=lambda f: _iou(face.box, [float(v) for v in f.box]), default=None)
            if best is None or _iou(face.box, [float(v) for v in best.box]) < 0.5:
                raise LookupError("face not found again")
        except Exception as exc:
            log.info("impostor example %s stays with %s (%s)", example.pk, old, exc)
            left += 1
            continue
        ImpostorExample.objects.create(person_id=example.person_id, event_face=face, created_by=example.created_by,
                                       embedding=best.embedding.tolist(), model_name=pipeline.embedder_name,
                                       model_version=pipeline.embedder_version)
        done += 1
    return {"impostors_reembedded": done, "impostors_left": left}


def _iou(a: list[float], b: list[float]) -> float:
    from enrollment.dominant import box_iou

    return box_iou(a, b)


# ---------------------------------------------------------------- the switch itself -------------------------

def _switch(run: int, by: str) -> EmbedderState:
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


def remap_threshold(site: Site, old: str, new: str, when: Any) -> str:
    """Give ``site`` its threshold for ``new``: a threshold that was ``old``'s model-card default becomes
    ``new``'s default; a custom one is remembered for ``old`` (restored if it comes back) and the site gets
    the threshold remembered for ``new`` if any, else ``new``'s default, with a note to re-tune. The change is
    in the audit log (django-auditlog records the Site update)."""
    old = site.threshold_model or old
    if old == new:
        return ""
    old_default = model_default_threshold(old)
    custom = old_default is None or abs(site.match_threshold - old_default) > 1e-9
    remembered = dict(site.other_thresholds or {})
    if custom:
        remembered[old] = site.match_threshold
    else:
        remembered.pop(old, None)
    restored = remembered.pop(new, None)
    day = when.date().isoformat()
    if restored is not None:
        site.match_threshold = float(restored)
        note = f"{new}'s threshold {restored:.3f} set before was restored at the switch on {day}"
    else:
        site.match_threshold = model_default_threshold(new)
        note = (f"threshold reset to {new}'s default at the switch on {day}: re-tune (the custom "
                f"{remembered[old]:.3f} is kept for {old})") if custom else ""
    site.threshold_model, site.other_thresholds, site.threshold_note = new, remembered, note
    site.save(update_fields=["match_threshold", "threshold_model", "other_thresholds", "threshold_note",
                             "updated_at"])
    return note


def prune_other_models() -> int:
    """Delete every embedding (photos and impostor examples) of a model other than the active one."""
    row = state_row()
    if row.in_progress:
        raise SwitchError("switch_in_progress", "a switch is under way: prune after it", 409)
    active = current_embedder_name()
    deleted = FaceEmbedding.objects.exclude(model_name=active).delete()[0]
    return deleted + ImpostorExample.objects.exclude(model_name=active).delete()[0]


# ---------------------------------------------------------------- what the console and the API show --------

def people_losing_their_last_photo(failures: list[dict]) -> list[Person]:
    """People every enrolled photo of whom failed with the target: after the switch nobody recognises them."""
    failed = {f["image"] for f in failures}
    people = {f["person"] for f in failures}
    out = []
    for person in Person.objects.filter(pk__in=people).prefetch_related("face_images"):
        enrolled = {i.pk for i in person.face_images.all() if i.status == ENROLLED}
        if enrolled and enrolled <= failed:
            out.append(person)
    return out


def status() -> dict[str, Any]:
    """The switch as JSON (API) and template context (console)."""
    from recognition.engine.registry import EMBEDDERS

    row = state_row()
    active = row.active_name or current_embedder_name()
    tried = row.done + row.failed
    losing = people_losing_their_last_photo(row.failures) if row.failures else []
    names = dict(Person.objects.filter(pk__in={f["person"] for f in row.failures}).values_list("pk", "name"))
    return {
        "active": {"name": active, "version": row.active_version, "threshold": model_default_threshold(active)},
        "previous": row.previous_name or None,
        "configured": configured_embedder_name(),
        "state": row.state,
        "target": {"name": row.target_name, "version": row.target_version} if row.target_name else None,
        "total": row.total, "done": row.done, "failed": row.failed,
        "percent": round(100.0 * tried / row.total, 1) if row.total else (100.0 if row.target_name else 0.0),
        "failures": [{**f, "person_name": names.get(f["person"], "")} for f in row.failures],
        "people_losing_last_photo": [{"id": p.pk, "name": p.name} for p in losing],
        "impostors": {k: v for k, v in row.extra.items() if k.startswith("impostors_")},
        "message": row.message, "started_by": row.started_by,
        "started_at": row.started_at, "finished_at": row.finished_at, "switched_at": row.switched_at,
        "models": [{"name": m, "threshold": model_default_threshold(m), "active": m == active} for m in EMBEDDERS],
        "sites": [{"id": s.pk, "name": s.name, "threshold": s.match_threshold, "threshold_model": s.threshold_model,
                   "other_thresholds": s.other_thresholds, "note": s.threshold_note}
                  for s in Site.objects.order_by("name")],
    }
