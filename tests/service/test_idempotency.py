"""A camera retrying with the same idempotency key gets the same event, never a duplicate: one after the other,
racing (eight requests with one key make one event, and every response but the one that created it says
``Idempotent-Replayed: true``), and after the broker refused the first one (queued again, not replayed)."""

from __future__ import annotations

import io
import threading
from unittest import mock

import pytest
from django.db import connection

from access.models import AccessEvent
from access.snapshots.channel import PROCESS_SNAPSHOT
from access.snapshots.intake import create_event
from faceaccess.uploads import validate_image_bytes

from .conftest import image_bytes, make_camera, media_files

pytestmark = pytest.mark.django_db
SNAPSHOTS = "/api/v1/snapshots/"
RACERS = 8


def post(camera, key: str | None, color=(1, 2, 3)):
    f = io.BytesIO(image_bytes(color))
    f.name = "snap.png"
    data = {"image": f} | ({"idempotency_key": key} if key is not None else {})
    return camera.client().post(SNAPSHOTS, data, format="multipart")


def test_same_key_same_event(camera, media):
    first = post(camera, "door-42")
    again = post(camera, "door-42", color=(9, 9, 9))
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert AccessEvent.objects.count() == 1
    assert len(media_files(media)) == 1


def test_replay_of_a_decided_event_returns_the_decision(camera, media):
    event_id = post(camera, "k1").json()["id"]
    AccessEvent.objects.filter(pk=event_id).update(status="done", decision="unknown", reason="r")
    response = post(camera, "k1")
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["decision"]) == (event_id, "unknown")


def test_replay_with_a_broken_image_still_returns_the_original(camera, media):
    event_id = post(camera, "k2").json()["id"]
    f = io.BytesIO(b"")
    f.name = "snap.jpg"
    response = camera.client().post(SNAPSHOTS, {"image": f, "idempotency_key": "k2"}, format="multipart")
    assert response.status_code == 202 and response.json()["id"] == event_id


def test_keys_are_per_camera(site, camera, media):
    other = make_camera(site, "back door")
    assert post(camera, "same").json()["id"] != post(other, "same").json()["id"]
    assert AccessEvent.objects.count() == 2


def test_no_key_means_a_new_event_each_time(camera, media):
    assert post(camera, None).json()["id"] != post(camera, None).json()["id"]
    assert post(camera, "").json()["id"] != post(camera, "").json()["id"]
    assert AccessEvent.objects.count() == 4


def test_a_racing_duplicate_returns_the_winner_and_removes_its_file(camera, media):
    # Two requests with one key pass the lookup together; the second insert hits the unique constraint.
    winner = post(camera, "race").json()["id"]
    upload = validate_image_bytes(image_bytes((4, 4, 4)), "snap.png")
    with mock.patch("access.snapshots.intake.enqueue_snapshot"):
        event, created = create_event(camera.camera, upload, "race", None)
    assert event.pk == winner and not created
    assert AccessEvent.objects.count() == 1
    assert len(media_files(media)) == 1


# ---------------------------------------------------------------- issue 9, defect 4 --------------------------

def broker_down(*args, **kwargs):
    raise ConnectionError("redis is down")


def test_a_retry_after_a_broker_failure_queues_the_event_again(camera, media, django_capture_on_commit_callbacks):
    with mock.patch("access.snapshots.intake.send", side_effect=broker_down):
        with django_capture_on_commit_callbacks(execute=True):
            event_id = post(camera, "k1").json()["id"]
    event = AccessEvent.objects.get(pk=event_id)
    assert (event.status, event.reason) == ("failed", "could not queue the snapshot: redis is down")

    with mock.patch("access.snapshots.intake.send") as delay:  # the broker is back
        with django_capture_on_commit_callbacks(execute=True):
            retry = post(camera, "k1")
    assert retry.status_code == 202, retry.content
    assert retry.json() == {**retry.json(), "id": event_id, "status": "pending"}
    assert retry["Idempotent-Replayed"] == "true"
    delay.assert_called_once_with(PROCESS_SNAPSHOT, event_id, priority=0)
    event.refresh_from_db()
    assert (event.status, event.reason, event.processed_at) == ("pending", "", None)
    assert AccessEvent.objects.count() == 1 and len(media_files(media)) == 1


def test_a_retry_while_the_broker_is_still_down_fails_again_and_can_be_retried_later(
    camera, media, django_capture_on_commit_callbacks
):
    with mock.patch("access.snapshots.intake.send", side_effect=broker_down) as delay:
        for _ in range(2):
            with django_capture_on_commit_callbacks(execute=True):
                event_id = post(camera, "k3").json()["id"]
    assert delay.call_count == 2
    assert AccessEvent.objects.get(pk=event_id).status == "failed"
    with mock.patch("access.snapshots.intake.send") as delay, django_capture_on_commit_callbacks(execute=True):
        post(camera, "k3")
    delay.assert_called_once_with(PROCESS_SNAPSHOT, event_id, priority=0)


def test_an_event_that_failed_in_the_worker_is_replayed_not_requeued(camera, media,
                                                                     django_capture_on_commit_callbacks):
    event_id = post(camera, "k4").json()["id"]
    AccessEvent.objects.filter(pk=event_id).update(status="failed", reason="bad image: truncated")
    with mock.patch("access.snapshots.intake.send") as delay, django_capture_on_commit_callbacks(execute=True):
        response = post(camera, "k4")
    assert not delay.called
    assert response.status_code == 200 and response["Idempotent-Replayed"] == "true"
    assert (response.json()["status"], response.json()["reason"]) == ("failed", "bad image: truncated")


@pytest.mark.django_db(transaction=True)  # real concurrent transactions
def test_racing_retries_make_one_event_and_every_response_but_the_creator_says_replayed(camera, media):
    barrier = threading.Barrier(RACERS)
    responses = [None] * RACERS

    def racer(i: int) -> None:
        try:
            client = camera.client()
            f = io.BytesIO(image_bytes((i, i, i)))
            f.name = "snap.png"
            barrier.wait()
            responses[i] = client.post(SNAPSHOTS, {"image": f, "idempotency_key": "same"}, format="multipart")
        finally:
            connection.close()

    with mock.patch("access.snapshots.intake.enqueue_snapshot"):
        threads = [threading.Thread(target=racer, args=(i,)) for i in range(RACERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert all(r is not None and r.status_code == 202 for r in responses), [getattr(r, "content", r) for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert AccessEvent.objects.count() == 1 and len(media_files(media)) == 1
    replayed = [r.get("Idempotent-Replayed") for r in responses]
    assert sorted(replayed, key=str) == [None] + ["true"] * (RACERS - 1), replayed
