"""The engine inside a worker process: one Pipeline per embedder, loaded once and kept, and the batcher
that lets concurrent snapshots share its calls.

The Pipeline is loaded on first use (or right after the worker starts when FACEACCESS_PRELOAD_PIPELINE is
on: ``worker_process_init`` in a prefork child, ``worker_init`` for a threads or solo pool) and kept for the
life of the process; a web request never loads a model, and nothing here imports torch until a pipeline is
actually loaded. torch's threads are set deliberately when it loads (:func:`torch_threads`).

:class:`EngineBatcher`: in a worker that runs several tasks at once (``-P threads -c N``, the GPU worker),
snapshots on their way to the engine are gathered into one engine call: one detector pass per image size and
one embedder pass over all their faces (up to FACEACCESS_BATCH_SIZE snapshots, waiting at most
FACEACCESS_BATCH_WAIT_MS for the ones still being read); each caller gets its own faces or its own exception.
In a prefork child (one task at a time) every snapshot is a batch of one and nothing waits.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from celery.signals import worker_init, worker_process_init
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

    def score_liveness(self, image: np.ndarray, faces: Sequence[Any]) -> list[float]:
        """Live scores of ``faces`` found in ``image`` (also stored on each face); raises when liveness is not
        installed."""
        ...


_lock = threading.Lock()
_loaded: dict[str, FacePipeline] = {}


def current_embedder_name() -> str:
    """The model whose embeddings are matched against: the active one of the EmbedderState row (cached a
    couple of seconds per process), else FACEACCESS_EMBEDDER, else the engine's default (recognition.active)."""
    from .active import active_embedder_name

    return active_embedder_name()


def get_pipeline(embedder: str | None = None) -> FacePipeline:
    """The process's Pipeline for ``embedder`` (default: the current one), loaded once."""
    name = embedder or current_embedder_name()
    with _lock:
        if name not in _loaded:
            _loaded[name] = _load(name)
        return _loaded[name]


ENGINE_QUEUE = "gpu"  # where CELERY_TASK_ROUTES sends the tasks that run the engine (an io worker never loads it)
# The Celery pool of this worker ("prefork", "threads", "solo"...) and its concurrency, noted by ``worker_init``
# in the worker's main process (a prefork child inherits them); None outside a worker.
_pool: dict[str, Any] = {"kind": None, "concurrency": 1}


def torch_threads() -> int:
    """Intra-op threads for this process's engine: FACEACCESS_TORCH_THREADS, else 1.

    Deliberately one (README, "Door latency"): on an idle 2-core machine two threads make one snapshot 15-25%
    faster, but as soon as anything else wants a core (the web process with the next upload, PostgreSQL, a
    second worker, this worker's own threads) two threads take 1.5x (sleeping between parallel regions) to
    10x (OpenMP's default spinning) longer, and they cost ~25% more CPU per snapshot, which is throughput lost.
    A dedicated engine box may set more; on a GPU they hardly matter."""
    return settings.FACEACCESS_TORCH_THREADS or 1


def _load(name: str) -> FacePipeline:
    import torch

    from recognition.engine import Pipeline

    threads = torch_threads()
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)  # the engine runs no inter-op parallel work
    except RuntimeError:
        pass  # already set, or inter-op work already ran in this process
    started = time.monotonic()
    device = settings.FACEACCESS_DEVICE
    from recognition.engine.registry import liveness_installed

    pipe = Pipeline.load(embedder=name, device=None if device == "auto" else device,
                         fp16=settings.FACEACCESS_ENGINE_FP16, liveness=liveness_installed())  # loaded now, once
    log.info("loaded pipeline %s-%s on %s%s in %.1f s (%d torch threads, batches of up to %d)", pipe.embedder_name,
             pipe.embedder_version, getattr(pipe, "device", "?"), " fp16" if settings.FACEACCESS_ENGINE_FP16 else "",
             time.monotonic() - started, threads, settings.FACEACCESS_BATCH_SIZE)
    return pipe


@worker_init.connect(dispatch_uid="recognition.pipelines.pool")
def _note_pool(sender: Any = None, **kwargs: object) -> None:
    """The worker's main process, before its pool starts: note the pool's kind and size. A threads or solo pool
    runs its tasks in this process, so the engine is preloaded here; a prefork pool loads it in each child."""
    pool_cls = getattr(sender, "pool_cls", None)
    name = pool_cls if isinstance(pool_cls, str) else f"{getattr(pool_cls, '__module__', '')}"
    kind = next((k for k in ("prefork", "thread", "solo", "eventlet", "gevent") if k in name), name or None)
    _pool.update(kind="threads" if kind == "thread" else kind,
                 concurrency=int(getattr(sender, "concurrency", 1) or 1))
    try:  # the queues this worker consumes (-Q), selected before worker_init
        consumed = set(sender.app.amqp.queues.consume_from or sender.app.amqp.queues)
    except AttributeError:
        consumed = {ENGINE_QUEUE}
    if _pool["kind"] != "prefork" and settings.FACEACCESS_PRELOAD_PIPELINE and ENGINE_QUEUE in consumed:
        threading.Thread(target=_load_quietly, name="pipeline-preload", daemon=True).start()


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


def read_bytes(field_file: Any) -> bytes:
    """A stored upload's bytes (straight from the storage's path when it has one: no File object around it)."""
    try:
        path = field_file.path
    except (NotImplementedError, ValueError, AttributeError):
        path = None
    if path is not None:
        with open(path, "rb") as fh:
            return fh.read()
    with field_file.open("rb") as fh:
        return fh.read()


def decode_image(data: bytes) -> np.ndarray:
    """Decode an upload's bytes with the engine's loader and the same pixel limits the API applied (the web
    process only read its header), holding a decode slot so that concurrent decodes stay bounded. A JPEG over
    FACEACCESS_MAX_DECODED_PIXELS comes back decoded at reduced size (the engine's work per photo is bounded)."""
    from faceaccess.uploads import decode_slot
    from recognition.engine import load_image

    with decode_slot():
        return load_image(data, max_pixels=settings.FACEACCESS_MAX_PIXELS,
                          max_decoded_pixels=settings.FACEACCESS_MAX_DECODED_PIXELS or None,
                          max_full_decode_pixels=settings.FACEACCESS_MAX_FULL_DECODE_PIXELS or None)


def read_image(field_file: Any) -> np.ndarray:
    """A stored upload, decoded (:func:`read_bytes` + :func:`decode_image`)."""
    return decode_image(read_bytes(field_file))


# ---------------------------------------------------------------- batching ----------------------------------

@dataclass(eq=False)
class _Job:
    image: np.ndarray
    detection: Any
    queued: float = field(default_factory=time.perf_counter)
    faces: list | None = None
    error: BaseException | None = None
    timings: dict[str, float] = field(default_factory=dict)
    done: bool = False


class EngineBatcher:
    """Gathers the snapshots that concurrent tasks of one process hand to the engine into shared calls.

    A task announces itself with :meth:`ticket` as soon as it starts (while it reads and decodes its photo it
    is "coming") and hands its image over with :meth:`Ticket.faces`. Whoever finds the engine free leads: it
    waits, at most ``max_wait_s``, while announced snapshots are still coming and the batch has room, then
    runs the engine once for up to ``max_size`` images (one call per detection policy among them; inside it,
    one detector pass per image size and one embedder pass for all the faces, see :func:`engine_faces`) while
    the others wait for their results; images that arrive meanwhile form the next batch. A lone snapshot, with
    nothing coming, runs at once: no waiting, no thread hand-off. When a batch fails, each of its images is
    run again on its own, so a bad image fails alone and its batch-mates get their faces.
    """

    def __init__(self, max_size: int, max_wait_s: float, pipeline: Any = None) -> None:
        self.max_size = max(1, int(max_size))
        self.max_wait_s = max(0.0, float(max_wait_s))
        self._pipeline = pipeline  # a callable returning the pipeline (default: this process's current one)
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._coming = 0
        self._leading = False
        self.batches: list[int] = []  # sizes of the last batches run (newest last), for tests and logs

    def ticket(self) -> Ticket:
        return Ticket(self)

    def _announce(self) -> None:
        with self._cond:
            self._coming += 1

    def _withdraw(self) -> None:
        with self._cond:
            self._coming -= 1
            self._cond.notify_all()

    def run(self, image: np.ndarray, detection: Any = None, announced: bool = False) -> tuple[list, dict]:
        """The faces of ``image`` and this image's timings (batch_size, batch_wait, detect, embed in ms)."""
        job = _Job(image, detection)
        cond = self._cond
        with cond:
            self._queue.append(job)
            if announced:
                self._coming -= 1
            cond.notify_all()  # a leader gathering a batch may be waiting for this one
            try:
                self._wait_or_lead(job)
            except BaseException:
                if job in self._queue:  # interrupted (a time limit) before any batch took it
                    self._queue.remove(job)
                raise
        if job.error is not None:
            raise job.error
        return job.faces or [], job.timings

    def _wait_or_lead(self, job: _Job) -> None:
        """Called holding the lock: returns once ``job`` is done, having led batches whenever the engine was free."""
        cond = self._cond
        while not job.done:
            if self._leading:
                cond.wait()
                continue
            self._leading = True
            try:
                deadline = time.monotonic() + self.max_wait_s
                while len(self._queue) < self.max_size and self._coming > 0:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    cond.wait(left)
                batch = self._queue[: self.max_size]
                del self._queue[: self.max_size]
                cond.release()
                try:
                    self._run(batch)
                finally:
                    cond.acquire()
                    for member in batch:
                        member.done = True
            finally:
                self._leading = False
                cond.notify_all()

    def _run(self, batch: list[_Job]) -> None:
        started = time.perf_counter()
        self.batches = [*self.batches[-99:], len(batch)]
        try:
            pipeline = self._pipeline() if self._pipeline is not None else get_pipeline()
        except BaseException as exc:
            for job in batch:
                job.error = exc
            if not isinstance(exc, Exception):
                raise
            return
        groups: dict[str, list[_Job]] = {}
        for job in batch:  # one engine call per detection policy in the batch
            groups.setdefault(repr(job.detection), []).append(job)
        for group in groups.values():
            self._run_group(pipeline, group, started, len(batch))

    def _run_group(self, pipeline: Any, group: list[_Job], started: float, size: int) -> None:
        timings: dict[str, float] = {}
        try:
            results = engine_faces(pipeline, [j.image for j in group], group[0].detection, timings)
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
                return
            log.warning("a batch of %d snapshots failed (%s: %s); running each on its own", len(group),
                        type(exc).__name__, exc)
            for job in group:  # isolate the bad image: every other one still gets its faces
                self._run_group(pipeline, [job], time.perf_counter(), 1)
            return
        except BaseException as exc:  # a time limit, an exit: every waiter hears of it, the leader re-raises
            for job in group:
                job.error = exc
            raise
        for job, faces in zip(group, results, strict=True):
            job.faces = faces
            job.timings = {"batch_size": size, "batch_wait": (started - job.queued) * 1000.0, **timings}


class Ticket:
    """One task's place in the batcher: announced on creation, used once by :meth:`faces`, withdrawn when the
    task leaves without using it (a failed read, a bad image)."""

    def __init__(self, batcher: EngineBatcher) -> None:
        self.batcher = batcher
        self.open = True
        batcher._announce()

    def faces(self, image: np.ndarray, detection: Any = None) -> tuple[list, dict]:
        announced, self.open = self.open, False
        return self.batcher.run(image, detection, announced=announced)

    def close(self) -> None:
        if self.open:
            self.open = False
            self.batcher._withdraw()

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_engine_options: dict[type, bool] = {}


def engine_faces(pipeline: Any, images: Sequence[np.ndarray], detection: Any, timings: dict[str, float]) -> list:
    """``pipeline.faces`` for a batch. With the engine's Pipeline: images of different sizes are detected in one
    call per size (``batch_by_size``: each face exactly as its image alone would give it, not shifted by the
    padding to a common size) and ``timings`` gets detect and embed; another pipeline (a test's fake) is called
    plainly and timed as a whole (``engine``)."""
    kind = type(pipeline)
    if kind not in _engine_options:
        try:
            params = inspect.signature(pipeline.faces).parameters
            _engine_options[kind] = "timings" in params and "batch_by_size" in params
        except (TypeError, ValueError):
            _engine_options[kind] = False
    if _engine_options[kind]:
        return pipeline.faces(images, embed=True, detection=detection, timings=timings, batch_by_size=True)
    started = time.perf_counter()
    out = pipeline.faces(images, embed=True, detection=detection)
    timings["engine"] = (time.perf_counter() - started) * 1000.0
    return out


_batcher: EngineBatcher | None = None


def batcher() -> EngineBatcher:
    """This process's batcher (FACEACCESS_BATCH_SIZE, FACEACCESS_BATCH_WAIT_MS)."""
    global _batcher
    with _lock:
        if _batcher is None:
            _batcher = EngineBatcher(settings.FACEACCESS_BATCH_SIZE, settings.FACEACCESS_BATCH_WAIT_MS / 1000.0)
        return _batcher
