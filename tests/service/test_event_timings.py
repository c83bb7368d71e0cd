"""Issue 10: every event records where its time went (``timings``, milliseconds per stage), shown in the event
API: with the fake engine run inline, and end to end through a real worker (the intake figures travel in the
task message's header, the waiting request hears of the decision through Redis pub/sub)."""

from __future__ import annotations

import io

import pytest

from access import signals  # noqa: F401  (connects the request clock before the first request)
from access.models import AccessEvent

from .conftest import LFW_IMAGES, engine_missing_reason, fake_face, unit

pytestmark = pytest.mark.django_db(transaction=True)
SNAPSHOTS = "/api/v1/snapshots/"
WEB = ("parse", "store", "insert", "enqueue", "fetch", "total")
WORKER = ("load", "decode", "batch_wait", "search", "decide", "save")


def post(camera, data: bytes, name: str = "snap.png", query: str = "?wait=5"):
    f = io.BytesIO(data)
    f.name = name
    return camera.client().post(SNAPSHOTS + query, {"image": f}, format="multipart")


@pytest.mark.usefixtures("eager_celery", "media")
def test_the_breakdown_is_stored_on_the_event_and_shown_by_the_api(fake_pipeline, camera, owner_client):
    data = fake_pipeline.register((21, 22, 23), [fake_face(unit(3))])
    response = post(camera, data)
    assert response.status_code == 200, response.content
    timings = response.json()["timings"]
    for stage in (*WEB, *WORKER, "engine"):  # the fake engine cannot split detect / embed: one "engine" figure
        assert isinstance(timings.get(stage), int | float) and timings[stage] >= 0, (stage, timings)
    assert timings["batch_size"] == 1
    assert timings["total"] >= timings["parse"] + timings["store"]
    stored = AccessEvent.objects.get(pk=response.json()["id"]).timings
    assert stored == timings
    shown = owner_client.get(f"/api/v1/events/{response.json()['id']}/")
    assert shown.status_code == 200 and shown.json()["timings"] == timings


@pytest.mark.usefixtures("eager_celery", "media")
def test_a_failed_snapshot_keeps_the_timings_it_has(fake_pipeline, camera):
    fake_pipeline.error = RuntimeError("engine down")
    body = post(camera, fake_pipeline.register((24, 25, 26), [])).json()
    assert body["status"] == "failed"
    assert {"load", "decode"} <= set(body["timings"])


@pytest.mark.usefixtures("eager_celery", "media")
def test_no_wait_no_web_figures_after_the_intake(fake_pipeline, camera):
    body = post(camera, fake_pipeline.register((27, 28, 29), []), query="").json()
    event = AccessEvent.objects.get(pk=body["id"])
    assert event.status == "done" and "total" not in (event.timings or {})
    assert {"load", "decode", "save"} <= set(event.timings)


MISSING = engine_missing_reason()


@pytest.mark.slow
@pytest.mark.weights
@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
def test_through_a_real_worker_every_stage_is_measured(celery_worker_process, camera):
    photo = LFW_IMAGES / "Colin_Powell" / "Colin_Powell_0001.jpg"
    response = post(camera, photo.read_bytes(), name=photo.name, query="?wait=10")
    assert response.status_code == 200, (response.content, celery_worker_process.log_text()[-3000:])
    body = response.json()
    assert body["status"] == "done" and body["faces"], (body, celery_worker_process.log_text()[-3000:])
    timings = body["timings"]
    expected = (*WEB, *WORKER, "queue", "detect", "embed", "commit", "notify")
    assert all(isinstance(timings.get(k), int | float) for k in expected), timings
    assert timings["woken_by"] == "pubsub"  # the notification ended the wait, not a database re-check
    assert timings["notify"] < 1000.0
    assert AccessEvent.objects.get(pk=body["id"]).timings == timings
