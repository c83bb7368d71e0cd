"""Liveness at the door with the fake engine (tasks run inline): which face is scored, what each policy does to
the decision, what the event, the API, the log filter, the what-if replay and the webhook payload record, and
that enforcing cannot be switched on without the models."""

from __future__ import annotations

import io

import pytest

from access.models import AccessEvent
from access.outputs.webhooks import payload

from .conftest import enroll_vector, fake_face, make_person, near, unit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery", "media")]
SNAPSHOTS = "/api/v1/snapshots/"
PRINT, LIVE = 0.004, 0.93


def post(camera, data: bytes) -> dict:
    f = io.BytesIO(data)
    f.name = "snap.png"
    response = camera.client().post(SNAPSHOTS + "?wait=2", {"image": f}, format="multipart")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def alice(fake_pipeline, site):
    person = make_person("Alice", sites=[site])
    enroll_vector(person, unit(1))
    return person


def policy(site, name: str, threshold: float = 0.5) -> None:
    site.liveness_policy, site.liveness_threshold = name, threshold
    site.save(update_fields=["liveness_policy", "liveness_threshold"])


def test_monitor_records_the_score_and_lets_the_print_in(fake_pipeline, site, camera, alice):
    policy(site, "monitor")
    body = post(camera, fake_pipeline.register((1, 1, 1), [fake_face(near(unit(1), 0.4, seed=1), live=PRINT)]))
    assert (body["decision"], body["person"], body["reason_code"]) == ("granted", alice.pk, "")
    assert body["liveness"] == pytest.approx(PRINT) and body["faces"][0]["liveness"] == pytest.approx(PRINT)
    assert (body["liveness_policy"], body["liveness_threshold"]) == ("monitor", 0.5)
    assert fake_pipeline.liveness_calls == [1]
    assert "liveness" in body["timings"]


def test_enforce_denies_the_print_and_grants_the_live_face(fake_pipeline, site, camera, alice):
    policy(site, "enforce")
    spoof = post(camera, fake_pipeline.register((2, 2, 2), [fake_face(near(unit(1), 0.4, seed=2), live=PRINT)]))
    assert (spoof["decision"], spoof["person"], spoof["reason_code"]) == ("denied", alice.pk, "presentation_attack")
    assert spoof["reason"] == "matched Alice at 0.400 but presentation attack suspected: live 0.004 < 0.500"
    live = post(camera, fake_pipeline.register((3, 3, 3), [fake_face(near(unit(1), 0.4, seed=3), live=LIVE)]))
    assert (live["decision"], live["reason_code"], live["liveness"]) == ("granted", "", pytest.approx(LIVE))
    # The log filters on it, in the API and the console alike.
    client = camera.client()
    assert [e["id"] for e in client.get("/api/v1/events/?reason_code=presentation_attack").json()["results"]] == \
        [spoof["id"]]
    assert [e["id"] for e in client.get("/api/v1/events/?liveness=suspected").json()["results"]] == [spoof["id"]]
    assert [e["id"] for e in client.get("/api/v1/events/?liveness=live").json()["results"]] == [live["id"]]
    assert client.get("/api/v1/events/?liveness=maybe").status_code == 400
    # The door hears it.
    sent = payload(AccessEvent.objects.get(pk=spoof["id"]))
    assert (sent["decision"], sent["liveness"], sent["reason_code"]) == ("denied", pytest.approx(PRINT),
                                                                          "presentation_attack")


def test_strangers_empty_frames_and_the_policy_off_cost_no_score(fake_pipeline, site, camera, alice):
    policy(site, "enforce")
    assert post(camera, fake_pipeline.register((4, 4, 4), [fake_face(unit(60), live=PRINT)]))["decision"] == "unknown"
    assert post(camera, fake_pipeline.register((5, 5, 5), []))["decision"] == "no_face"
    policy(site, "off")
    body = post(camera, fake_pipeline.register((6, 6, 6), [fake_face(near(unit(1), 0.4, seed=6), live=PRINT)]))
    assert (body["decision"], body["liveness"]) == ("granted", None)
    assert fake_pipeline.liveness_calls == []


def test_a_print_beside_a_live_colleague_scores_both_and_grants_the_colleague(fake_pipeline, site, camera, alice):
    bob = make_person("Bob", sites=[site])
    enroll_vector(bob, unit(2))
    policy(site, "enforce")
    faces = [fake_face(near(unit(1), 0.3, seed=7), live=PRINT), fake_face(near(unit(2), 0.5, seed=8), live=LIVE)]
    body = post(camera, fake_pipeline.register((7, 7, 7), faces))
    assert (body["decision"], body["person"]) == ("granted", bob.pk)
    assert [f["liveness"] for f in body["faces"]] == [pytest.approx(PRINT), pytest.approx(LIVE)]
    assert fake_pipeline.liveness_calls == [1, 1]  # one face at a time, nearest first


def test_enforce_without_a_live_score_denies(fake_pipeline, site, camera, alice):
    from recognition.engine.registry import WeightsError

    policy(site, "enforce")
    fake_pipeline.liveness_error = WeightsError("liveness is not installed")
    body = post(camera, fake_pipeline.register((8, 8, 8), [fake_face(near(unit(1), 0.4, seed=9), live=LIVE)]))
    assert (body["decision"], body["reason_code"]) == ("denied", "liveness_unchecked")
    assert "liveness could not be checked" in body["reason"]


def test_the_what_if_replay_keeps_the_liveness_rules(fake_pipeline, site, camera, alice):
    from access.review import tuning

    policy(site, "enforce")
    post(camera, fake_pipeline.register((9, 9, 9), [fake_face(near(unit(1), 0.4, seed=10), live=PRINT)]))
    policy(site, "off")  # the site changed since: the stored rules still decide the replay
    replay = tuning.what_if(site, 0.9)
    assert (replay.examined, replay.changed) == (1, [])
    scores = tuning.live_scores(site)
    assert (scores.count, scores.suspected.tolist()) == (1, [pytest.approx(PRINT)])


def test_enforce_cannot_be_switched_on_without_the_models(fake_pipeline, site, owner_client, monkeypatch):
    from access import liveness

    monkeypatch.setattr(liveness, "installed", lambda: False)
    answer = owner_client.patch(f"/api/v1/sites/{site.pk}/", {"liveness_policy": "enforce"}, format="json")
    assert answer.status_code == 400
    assert "fetch-weights" in str(answer.json()) and "not installed" in str(answer.json())
    shown = owner_client.get(f"/api/v1/sites/{site.pk}/").json()
    assert shown["liveness_policy"] == "monitor" and shown["liveness_status"].startswith("liveness is not installed")
    assert owner_client.patch(f"/api/v1/sites/{site.pk}/", {"liveness_policy": "off"}, format="json").status_code == 200
    monkeypatch.setattr(liveness, "installed", lambda: True)
    assert owner_client.patch(f"/api/v1/sites/{site.pk}/", {"liveness_policy": "enforce"},
                              format="json").json()["liveness_policy"] == "enforce"


def test_the_console_refuses_enforce_without_the_models_and_says_how(fake_pipeline, site, staff, monkeypatch):
    from access import liveness

    from .test_console_pages import logged_in

    monkeypatch.setattr(liveness, "installed", lambda: False)
    client = logged_in(staff.admin)
    page = client.get(f"/sites/{site.pk}/edit/").content.decode()
    assert "Liveness cannot be enforced here" in page and "fetch-weights" in page
    form = {"name": site.name, "timezone": "UTC", "match_threshold": "0.9", "liveness_policy": "enforce",
            "liveness_threshold": "0.5", "min_face_px": "40", "min_detection_score": "0.9",
            "detection_policy": "standard", "decision_deadline_seconds": "30", "retain_unknown_days": "7",
            "retain_known_days": "90"}
    answer = client.post(f"/sites/{site.pk}/edit/", form)
    assert answer.status_code == 200 and "cannot enforce" in answer.content.decode()
    site.refresh_from_db()
    assert site.liveness_policy == "monitor"
