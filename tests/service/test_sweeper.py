"""The sweeper re-queues what was accepted but never processed, and gives up with a reason; a message that
keeps coming back is capped. Counters live in the session's real Redis; a real worker decides a swept snapshot."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.utils import timezone

from access.lifecycle import sweeper
from access.lifecycle.sweeper import sweep
from access.models import AccessEvent
from enrollment.models import FaceImage

from .conftest import make_person

pytestmark = pytest.mark.django_db(transaction=True)


SENT: list[tuple[str, int]] = []


def queued() -> int:
    return len(SENT)


@pytest.fixture
def empty_queues(monkeypatch):
    """Record what the sweeper queues (a worker started by another test may be consuming the real queue)."""
    SENT.clear()
    monkeypatch.setattr(sweeper, "send", lambda name, pk: SENT.append((name, pk)))
    yield
    SENT.clear()


def old(minutes: int = 5) -> dt.datetime:
    return timezone.now() - dt.timedelta(minutes=minutes)


def test_a_pending_snapshot_whose_message_was_lost_is_queued_again_then_failed(site, camera, empty_queues):
    lost = AccessEvent.objects.create(camera=camera.camera, site=site, received_at=old())
    fresh = AccessEvent.objects.create(camera=camera.camera, site=site, received_at=timezone.now())
    for attempt in range(settings.FACEACCESS_SWEEP_MAX_ATTEMPTS):
        assert sweep() == {"requeued": 1, "failed": 0}
        assert queued() == attempt + 1  # one message per sweep, for the lost event only
    assert sweep() == {"requeued": 0, "failed": 1}
    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.status == "failed" and "not processed after 3 re-queues" in lost.reason
    assert fresh.status == "pending"


def test_an_event_that_could_not_be_queued_is_queued_by_the_sweeper(site, camera, empty_queues):
    event = AccessEvent.objects.create(camera=camera.camera, site=site, received_at=old(), status="failed",
                                       reason="could not queue the snapshot: down", enqueue_failed=True)
    assert sweep()["requeued"] == 1 and queued() == 1
    event.refresh_from_db()
    assert (event.status, event.enqueue_failed, event.reason) == ("pending", False, "")


def test_a_pending_face_photo_is_queued_again(site, empty_queues):
    photo = FaceImage.objects.create(person=make_person("Ada"), image="faces/x.png")
    FaceImage.objects.filter(pk=photo.pk).update(uploaded_at=old())
    assert sweep()["requeued"] == 1 and queued() == 1


def test_a_message_that_keeps_coming_back_is_capped(site, camera):
    from access.tasks import process_snapshot

    event = AccessEvent.objects.create(camera=camera.camera, site=site, received_at=timezone.now())
    # What the worker does on each redelivery of the same message: the task is called again.
    for _ in range(settings.FACEACCESS_MAX_DELIVERIES):
        process_snapshot.push_request(is_eager=False)
        try:
            from faceaccess.jobs import bump

            bump(f"deliveries:access.AccessEvent:{event.pk}")  # a delivery that died before finishing
        finally:
            process_snapshot.pop_request()
    process_snapshot.push_request(is_eager=False)
    try:
        assert process_snapshot(event.pk) == "failed"
    finally:
        process_snapshot.pop_request()
    event.refresh_from_db()
    assert event.status == "failed" and "gave up after 5 deliveries" in event.reason


@pytest.mark.weights
def test_a_lost_snapshot_is_decided_by_the_real_worker_after_a_sweep(celery_worker_process, site, camera):
    """The row and its file exist but no message was ever sent (lost with a broker crash): after a sweep the
    real worker decides it."""
    from django.core.files.base import ContentFile

    from .conftest import LFW_IMAGES, engine_missing_reason

    if engine_missing_reason():
        pytest.skip(engine_missing_reason())
    site.decision_deadline_seconds = 0  # this site wants late answers too (else it would end "expired")
    site.save()
    photo = sorted((LFW_IMAGES / "Colin_Powell").glob("*.jpg"))[0].read_bytes()
    event = AccessEvent(camera=camera.camera, site=site, received_at=old())
    event.snapshot.save("lost.jpg", ContentFile(photo), save=False)
    event.save()
    assert sweep()["requeued"] == 1
    deadline = timezone.now() + dt.timedelta(seconds=60)
    while timezone.now() < deadline:
        event.refresh_from_db()
        if event.status != "pending":
            break
        celery_worker_process.assert_alive()
        import time

        time.sleep(0.2)
    assert (event.status, event.decision) == ("done", "unknown"), event.reason
