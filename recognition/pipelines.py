"""The engine inside a worker process: one Pipeline per embedder, loaded once and kept.

The Pipeline is loaded on first use (or right after ``worker_process_init`` when
FACEACCESS_PRELOAD_PIPELINE is on) and kept for the life of the process; a web request never
loads a model, and nothing here imports torch until a pipeline is actually loaded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from celery.signals import worker_process_init
from django.conf import settings

log = logging.getLogger(__name__)


class FacePipeline(Protocol):
    """What the service needs of the engine (``recognition.engine.Pipeline``, or a test's fake)."""

    embedder_name: str
    embedder_version: str

    def faces(
        self, images: Sequence[np.ndarray], embed: bool = True, return_crops: bool = False, flip_tta: bool = False,
        detection: Any = None,
    ) -> list[list[Any]]: ...


_lock = threading.Lock()
_loaded: dict[str, FacePipeline] = {}


def current_embedder_name() -> str:
    """The model whose embeddings are matched against (FACEACCESS_EMBEDDER, else the engine's default)."""
    if settings.FACEACCESS_EMBEDDER:
        return settings.FACEACCESS_EMBEDDER
    from recognition.engine.registry import DEFAULT_EMBEDDER

    return DEFAULT_EMBEDDER


def get_pipeline(embedder: str | None = None) -> FacePipeline:
    """The process's Pipeline for ``embedder`` (default: the current one), loaded once."""
    name = embedder or current_embedder_name()
    with _lock:
        if name not in _loaded:
            _loaded[name] = _load(name)
        return _loaded[name]


def _load(name: str) -> FacePipeline:
    import torch

    from recognition.engine import Pipeline

    if settings.FACEACCESS_TORCH_THREADS:
        torch.set_num_threads(settings.FACEACCESS_TORCH_THREADS)
    started = time.monotonic()
    device = settings.FACEACCESS_DEVICE
    pipe = Pipeline.load(embedder=name, device=None if device == "auto" else device)
    log.info("loaded pipeline %s-%s on %s in %.1f s", pipe.embedder_name, pipe.embedder_version,
             getattr(pipe, "device", "?"),
             time.monotonic() - started)
    return pipe


@worker_process_init.connect(dispatch_uid="recognition.pipelines.preload")
def _preload(**kwargs: object) -> None:
    # In a thread: the pool gives a new child only a few seconds to report ready, and loading torch and
    # the weights can take longer. A task that arrives meanwhile waits on the lock for the same load.
    if settings.FACEACCESS_PRELOAD_PIPELINE:
        threading.Thread(target=_load_quietly, name="pipeline-preload", daemon=True).start()


def _load_quietly() -> None:
    try:
        get_pipeline()
    except Exception:
        log.exception("preloading the pipeline failed; the first task will retry and report it")


def read_image(field_file: Any) -> np.ndarray:
    """Decode a stored upload with the engine's loader and the same pixel limit the API applied (the web
    process only read its header), holding a decode slot so that concurrent decodes stay bounded."""
    from faceaccess.uploads import decode_slot
    from recognition.engine import load_image

    with field_file.open("rb") as fh:
        data = fh.read()
    with decode_slot():
        return load_image(data, max_pixels=settings.FACEACCESS_MAX_PIXELS)
