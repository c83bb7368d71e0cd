"""The engine tasks: on the gpu queue, acknowledged late, and the Pipeline loaded once per process."""

from __future__ import annotations

import threading

import pytest

from access import tasks as access_tasks
from enrollment import tasks as enrollment_tasks
from recognition import pipelines


@pytest.mark.parametrize(
    ("task", "queue"), [(access_tasks.process_snapshot, "gpu"), (enrollment_tasks.embed_face_image, "gpu-bulk"),
                        (enrollment_tasks.reembed_all, "gpu-bulk"), (access_tasks.reembed_chunk, "gpu-bulk")]
)
def test_engine_tasks_go_to_the_engine_queues_and_ack_late(task, queue):
    """Door snapshots on the doors' queue; enrollment and re-embedding on the bulk queue, taken after it."""
    from faceaccess.celery import app

    route = app.amqp.router.route({}, task.name, (1,), {})
    assert route["queue"].name == queue
    assert task.acks_late and task.reject_on_worker_lost


@pytest.fixture
def counting_load(monkeypatch):
    from recognition.engine import pipeline

    calls = []

    class Loaded:
        embedder_name, embedder_version = "sface", "x"

    def load(embedder=None, device=None, **kw):
        calls.append((embedder, device))
        return Loaded()

    monkeypatch.setattr(pipeline.Pipeline, "load", staticmethod(load))
    monkeypatch.setattr(pipelines, "_loaded", {})
    return calls


def test_the_pipeline_is_loaded_once_per_process(counting_load, settings):
    settings.FACEACCESS_EMBEDDER = "sface"
    settings.FACEACCESS_DEVICE = "auto"
    first = pipelines.get_pipeline()
    assert pipelines.get_pipeline() is first and pipelines.get_pipeline("sface") is first
    assert counting_load == [("sface", None)]  # "auto" = let the engine pick CUDA or CPU


def test_concurrent_first_use_loads_once(counting_load, settings):
    settings.FACEACCESS_EMBEDDER = "sface"
    threads = [threading.Thread(target=pipelines.get_pipeline) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(counting_load) == 1


def test_preload_at_process_init_when_asked(counting_load, settings):
    settings.FACEACCESS_EMBEDDER = "sface"
    settings.FACEACCESS_PRELOAD_PIPELINE = True
    pipelines._preload()
    for t in threading.enumerate():
        if t.name == "pipeline-preload":
            t.join(10)
    assert len(counting_load) == 1


def test_no_preload_unless_asked(counting_load, settings):
    settings.FACEACCESS_PRELOAD_PIPELINE = False
    pipelines._preload()
    assert counting_load == []


@pytest.mark.django_db
def test_a_hard_time_limit_marks_the_unfinished_row_failed(site, camera):
    from billiard.exceptions import TimeLimitExceeded

    from access.models import AccessEvent
    from enrollment.models import FaceImage

    from .conftest import make_person

    pending = AccessEvent.objects.create(camera=camera.camera, site=site, received_at="2026-01-01T00:00:00Z")
    done = AccessEvent.objects.create(
        camera=camera.camera, site=site, received_at="2026-01-01T00:00:00Z", status="done", decision="granted"
    )
    for event in (pending, done):
        # What the worker's main process calls after killing a child over the hard limit.
        access_tasks.process_snapshot.on_failure(TimeLimitExceeded(180), "tid", (event.pk,), {}, None)
    pending.refresh_from_db()
    done.refresh_from_db()
    assert pending.status == "failed"
    assert pending.reason == "hard time limit exceeded (180 s): the worker stopped the task"
    assert (done.status, done.decision) == ("done", "granted")

    face = FaceImage.objects.create(person=make_person("Alice"), image="x.png", status="processing")
    enrollment_tasks.embed_face_image.on_failure(TimeLimitExceeded(180), "tid", (face.pk,), {}, None)
    face.refresh_from_db()
    assert face.status == "failed" and "time limit" in face.reason


def test_a_broker_failure_marks_the_row_failed_instead_of_leaving_it_pending(camera, monkeypatch):
    from django.utils import timezone

    from access.models import AccessEvent

    event = AccessEvent.objects.create(camera=camera.camera, site=camera.camera.site, received_at=timezone.now())

    def broker_down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(access_tasks.process_snapshot, "delay", broker_down)
    access_tasks.process_snapshot.enqueue(event.pk)
    event.refresh_from_db()
    assert event.status == AccessEvent.Status.FAILED
    assert event.reason == "could not queue the snapshot: redis is down"
