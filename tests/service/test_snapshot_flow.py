"""A snapshot through the API, the task and the decision (fake engine, tasks run inline on commit)."""

from __future__ import annotations

import io
from unittest import mock

import pytest

from access.models import AccessEvent

from .conftest import enroll_vector, fake_face, image_bytes, make_camera, make_person, near, unit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery", "media")]
SNAPSHOTS = "/api/v1/snapshots/"


def post(camera, data: bytes, query: str = "?wait=2", **fields):
    f = io.BytesIO(data)
    f.name = "snap.png"
    return camera.client().post(SNAPSHOTS + query, {"image": f, **fields}, format="multipart")


@pytest.fixture
def no_worker():
    """Queueing succeeds but nothing consumes the queue: the event stays pending."""
    with mock.patch("access.snapshots.intake.send") as delay:
        yield delay


@pytest.fixture
def alice(site):
    person = make_person("Alice", sites=[site])
    enroll_vector(person, unit(1))
    enroll_vector(person, near(unit(1), 0.3, seed=5))
    return person


@pytest.fixture
def bob(site):
    person = make_person("Bob", sites=[site])
    enroll_vector(person, unit(2))
    return person


def test_granted_as_the_right_person(fake_pipeline, camera, alice, bob):
    data = fake_pipeline.register((1, 1, 1), [fake_face(near(unit(1), 0.5, seed=9))])
    response = post(camera, data)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["decision"], body["person"], body["person_name"]) == (
        "done", "granted", alice.pk, "Alice"
    )
    assert body["threshold"] == 0.9 and (body["model_name"], body["model_version"]) == ("fake", "1")
    assert body["latency_ms"] >= 0
    (face,) = body["faces"]
    assert face["decision"] == "granted" and face["nearest_person"] == alice.pk
    assert face["distance"] == pytest.approx(0.5, abs=1e-4)  # to unit(1), nearer than her other photo
    assert face["runner_up_person"] == bob.pk and face["runner_up_distance"] > face["distance"]
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5


def test_stranger_is_unknown(fake_pipeline, camera, alice, bob):
    data = fake_pipeline.register((2, 2, 2), [fake_face(unit(77))])
    body = post(camera, data).json()
    assert (body["decision"], body["person"]) == ("unknown", None)
    assert body["faces"][0]["nearest_person"] in (alice.pk, bob.pk)  # recorded for a later replay


def test_no_face(fake_pipeline, camera, alice):
    data = fake_pipeline.register((3, 3, 3), [])
    body = post(camera, data).json()
    assert (body["decision"], body["faces"]) == ("no_face", [])


def test_tiny_face_is_no_face_with_a_reason(fake_pipeline, camera, alice):
    data = fake_pipeline.register((4, 4, 4), [fake_face(unit(1), size=20)])
    body = post(camera, data).json()
    assert body["decision"] == "no_face"
    assert "20 px" in body["reason"] and body["faces"][0]["decision"] == "ignored"


def test_person_not_allowed_at_this_camera_is_denied(fake_pipeline, site, alice, bob):
    back_door = make_camera(site, "back door")
    back_door.camera.allowed_people.set([bob])
    data = fake_pipeline.register((5, 5, 5), [fake_face(unit(1))])
    body = post(back_door, data).json()
    assert (body["decision"], body["person"]) == ("denied", alice.pk)
    assert "allow-list" in body["reason"]


def test_inactive_person_is_denied(fake_pipeline, camera, alice):
    alice.active = False
    alice.save()
    data = fake_pipeline.register((6, 6, 6), [fake_face(unit(1))])
    assert post(camera, data).json()["decision"] == "denied"


def test_without_wait_the_answer_is_202_and_the_event_url(fake_pipeline, camera, alice):
    data = fake_pipeline.register((7, 7, 7), [fake_face(unit(1))])
    response = post(camera, data, query="")
    assert response.status_code == 202
    event = camera.client().get(response.json()["url"]).json()
    assert (event["status"], event["decision"]) == ("done", "granted")


def test_wait_times_out_with_202_when_no_worker_answers(camera, alice, no_worker):
    response = post(camera, image_bytes((12, 12, 12)), query="?wait=0.3")
    assert no_worker.called
    assert response.status_code == 202
    assert response.json()["status"] == "pending"


def test_engine_failure_marks_the_event_failed(fake_pipeline, camera, alice):
    fake_pipeline.error = RuntimeError("CUDA fell over")
    body = post(camera, fake_pipeline.register((8, 8, 8), [])).json()
    assert body["status"] == "failed"
    assert "CUDA fell over" in body["reason"]


def test_unreadable_stored_snapshot_marks_the_event_failed(fake_pipeline, camera, alice, no_worker):
    from access.snapshots.processing import process_snapshot

    event_id = post(camera, fake_pipeline.register((9, 9, 9), [fake_face(unit(1))]), query="").json()["id"]
    event = AccessEvent.objects.get(pk=event_id)
    with open(event.snapshot.path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n broken")
    assert process_snapshot(event_id) == "failed"
    event.refresh_from_db()
    assert event.status == "failed" and event.reason.startswith("bad image:")


def test_a_redelivered_task_does_not_decide_twice(fake_pipeline, camera, alice):
    from access.snapshots.processing import process_snapshot

    body = post(camera, fake_pipeline.register((10, 10, 10), [fake_face(unit(1))])).json()
    calls = fake_pipeline.calls
    assert process_snapshot(body["id"]) == "done"
    assert fake_pipeline.calls == calls
    assert AccessEvent.objects.get(pk=body["id"]).faces.count() == 1


def test_camera_last_seen_is_updated_at_most_every_few_seconds(fake_pipeline, camera, alice):
    import datetime as dt

    from access.api.snapshots import LAST_SEEN_EVERY
    from access.models import Camera

    post(camera, fake_pipeline.register((11, 11, 11), []))
    camera.camera.refresh_from_db()
    first = camera.camera.last_seen_at
    assert first is not None
    post(camera, fake_pipeline.register((12, 12, 12), []))  # within LAST_SEEN_EVERY: no UPDATE (a commit saved)
    camera.camera.refresh_from_db()
    assert camera.camera.last_seen_at == first
    Camera.objects.filter(pk=camera.camera.pk).update(last_seen_at=first - LAST_SEEN_EVERY - dt.timedelta(seconds=1))
    post(camera, fake_pipeline.register((13, 13, 13), []))
    camera.camera.refresh_from_db()
    assert camera.camera.last_seen_at > first


def test_a_replay_of_the_stored_faces_gives_the_live_decision(fake_pipeline, site, camera, alice, bob):
    from access import decision_inputs, decisions

    faces = [fake_face(near(unit(1), 0.6, seed=3)), fake_face(unit(50)), fake_face(unit(2), size=10)]
    body = post(camera, fake_pipeline.register((13, 13, 13), faces)).json()
    event = AccessEvent.objects.get(pk=body["id"])
    inputs = decision_inputs.recorded_faces(event)
    people = decision_inputs.person_facts({f.nearest_person_id for f in inputs if f.nearest_person_id})
    rules = decision_inputs.camera_rules(camera.camera)
    replay = decisions.decide(inputs, decision_inputs.site_rules(site), rules, people, event.received_at)
    assert (replay.decision, replay.person_id, replay.reason) == (event.decision, event.person_id, event.reason)
    assert [o.decision for o in replay.faces] == [f["decision"] for f in body["faces"]]
    stricter = decisions.SiteRules(site.pk, 0.5, site.min_face_px, site.min_detection_score)
    assert decisions.decide(inputs, stricter, decision_inputs.camera_rules(camera.camera), people,
                            event.received_at).decision == "unknown"


def test_the_sites_detection_policy_reaches_the_engine(fake_pipeline, site, camera, alice):
    post(camera, fake_pipeline.register((70, 70, 70), [fake_face(unit(1))]))
    site.detection_policy = "small_faces"
    site.save()
    post(camera, fake_pipeline.register((71, 71, 71), [fake_face(unit(1))]))
    site.detection_policy = "close"
    site.full_clean()  # every engine preset is a choice of the site's field
    site.save()
    post(camera, fake_pipeline.register((72, 72, 72), [fake_face(unit(1))]))
    assert fake_pipeline.detections[-3:] == ["standard", "small_faces", "close"]
