"""Which embedder decides: the EmbedderState row, read through a short per-process cache.

The door path asks for every snapshot; a query each time would cost more than the answer changes, so the
name is cached for :data:`CACHE_S` seconds per process. A switch made in this process forgets it at once; a
switch made in another process reaches this one within the interval (the snapshot that straddles it is
still embedded and matched by one model: see ``access.snapshots.processing``).
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.core.signals import setting_changed
from django.db import DatabaseError, transaction
from django.dispatch import receiver

log = logging.getLogger(__name__)

CACHE_S = 2.0
_lock = threading.Lock()
# (configured name, active name, monotonic time read); keyed by the configured name so a test that changes
# FACEACCESS_EMBEDDER is never answered from another configuration's cache.
_cache: dict[str, tuple[str, float]] = {}


def configured_embedder_name() -> str:
    """FACEACCESS_EMBEDDER, else the engine's default: the model a new installation starts with, and the
    target of a switch when it names another model than the active one."""
    if settings.FACEACCESS_EMBEDDER:
        return settings.FACEACCESS_EMBEDDER
    from recognition.engine.registry import DEFAULT_EMBEDDER

    return DEFAULT_EMBEDDER


def active_embedder_name() -> str:
    """The model whose embeddings (and thresholds) decide now: the pinned row, else the configured one."""
    configured = configured_embedder_name()
    now = time.monotonic()
    with _lock:
        hit = _cache.get(configured)
        if hit is not None and now - hit[1] < CACHE_S:
            return hit[0]
    name = _read_active()
    with _lock:
        if name is None:  # the database did not answer: the last answer it gave, not cached as a fresh one
            return hit[0] if hit is not None else configured
        _cache[configured] = (name or configured, now)
    return name or configured


def _read_active() -> str | None:
    """The pinned name ("" when nothing is pinned), or None when the row cannot be read (no database here, the
    table not migrated yet, a connection lost: whatever fails next says so; this only must not guess)."""
    from .models import EmbedderState

    try:
        with transaction.atomic():  # a missing table must not poison a caller's transaction
            return EmbedderState.objects.filter(pk=1).values_list("active_name", flat=True).first() or ""
    except (DatabaseError, RuntimeError) as exc:  # RuntimeError: a process (or test) without database access
        log.warning("cannot read the active embedder (%s: %s)", type(exc).__name__, exc)
        return None


def forget() -> None:
    """Drop this process's cached answer (after a switch here, or in tests)."""
    with _lock:
        _cache.clear()


def state_row(lock: bool = False):
    """The EmbedderState row (created, not pinned, on first use); ``lock``: SELECT ... FOR UPDATE (inside a
    transaction)."""
    from .models import EmbedderState

    EmbedderState.objects.get_or_create(pk=1)
    rows = EmbedderState.objects.select_for_update() if lock else EmbedderState.objects
    return rows.get(pk=1)


def pin_active() -> str:
    """Write the model now in force into the row if nobody has (the engine worker's start, a switch's start),
    so that changing FACEACCESS_EMBEDDER later means "switch to it", not "silently match with it"."""
    with transaction.atomic():
        row = state_row(lock=True)
        if not row.active_name:
            row.active_name = configured_embedder_name()
            from recognition.engine.registry import WeightsError, get_spec

            try:
                row.active_version = get_spec(row.active_name).version
            except WeightsError:
                row.active_version = ""
            row.save(update_fields=["active_name", "active_version", "updated_at"])
            log.info("active embedder pinned to %s", row.active_name)
    forget()
    return row.active_name


@receiver(setting_changed, dispatch_uid="recognition.active.setting_changed")
def _setting_changed(setting: str = "", **kwargs: object) -> None:
    if setting == "FACEACCESS_EMBEDDER":
        forget()
