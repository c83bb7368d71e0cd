"""Issue 9, defect 11 (back-pressure): a snapshot queue deeper than FACEACCESS_MAX_QUEUE refuses new snapshots.

1,200 fire-and-forget posts used to be accepted and the last one decided 78 s after it arrived. Now the snapshot
view asks the session's real Redis how many messages wait in the snapshot queue before it stores anything: at
FACEACCESS_MAX_QUEUE or more the camera gets 503 ``overloaded`` with Retry-After and nothing is stored; below
the bound the same post (same idempotency key) is accepted.

The messages are dummy items pushed onto a list of this test's own: the session may run a real Celery worker
(test_end_to_end) that consumes the real "gpu" list and would drain them while the test runs. The view is
pointed at that list; a separate check pins the queue it asks in production to the one snapshots are routed to.
"""

from __future__ import annotations

import io
import uuid

import pytest

from access.api import snapshots as snapshot_view
from access.models import AccessEvent
from faceaccess.redis_conn import client as redis_client

from .conftest import image_bytes, media_files

pytestmark = pytest.mark.django_db

BOUND = 5
DUMMY = b'{"dummy": "tests/service/test_backpressure.py"}'


@pytest.fixture
def queue(settings, monkeypatch):
    """A Redis list standing for the snapshot queue, removed afterwards."""
    name = f"backpressure-test-{uuid.uuid4().hex[:8]}"
    settings.FACEACCESS_MAX_QUEUE = BOUND
    monkeypatch.setattr(snapshot_view, "snapshot_queue", lambda: name, raising=False)
    if hasattr(snapshot_view, "_QueueCheck"):  # a broker failure seen earlier in this process: ask anyway
        monkeypatch.setattr(snapshot_view._QueueCheck, "skip_until", 0.0)
    client = redis_client()
    try:
        yield client, name
    finally:
        client.delete(name)
        client.close()


def post(camera, key: str, wait: float = 2):
    f = io.BytesIO(image_bytes((1, 2, 3)))
    f.name = "door.png"
    return camera.client().post(f"/api/v1/snapshots/?wait={wait:g}", {"image": f, "idempotency_key": key},
                                format="multipart")


def test_snapshots_queue_where_the_view_looks():
    assert snapshot_view.snapshot_queue() == "gpu"  # CELERY_TASK_ROUTES: access.tasks.* -> gpu


def test_a_full_queue_answers_503_overloaded_with_retry_after_and_stores_nothing(camera, media, queue, settings):
    client, name = queue
    client.lpush(name, *[DUMMY] * BOUND)

    response = post(camera, "k1")

    assert response.status_code == 503, response.content
    assert response["Retry-After"] == str(settings.FACEACCESS_BROKER_RETRY_AFTER)
    body = response.json()
    assert body["error"] == "overloaded" and f"{BOUND} jobs wait" in body["detail"], body
    assert "Idempotent-Replayed" not in response
    assert AccessEvent.objects.count() == 0
    assert media_files(media) == []

    # One fewer waiting: the camera's retry with the same key is accepted.
    client.lpop(name)
    response = post(camera, "k1", wait=0)
    assert response.status_code == 202, response.content
    event = AccessEvent.objects.get()
    assert (response.json()["id"], event.idempotency_key, event.status) == (event.pk, "k1", "pending")
    assert len(media_files(media)) == 1


def test_a_replay_of_an_accepted_snapshot_is_answered_while_the_queue_is_full(camera, media, queue):
    client, name = queue
    first = post(camera, "k2", wait=0)
    assert first.status_code == 202, first.content
    client.lpush(name, *[DUMMY] * (BOUND + 10))

    again = post(camera, "k2", wait=0)  # adds no work: the event is already queued
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"], again.content
    assert again["Idempotent-Replayed"] == "true"
    assert post(camera, "k3", wait=0).status_code == 503
    assert AccessEvent.objects.count() == 1


def test_the_bound_can_be_turned_off(camera, media, queue, settings):
    client, name = queue
    client.lpush(name, *[DUMMY] * (BOUND + 10))
    settings.FACEACCESS_MAX_QUEUE = 0
    assert post(camera, "k4", wait=0).status_code == 202
