"""Reviews, impostor examples and strangers, through the API (the console calls the same functions)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from access.models import AccessEvent, EventReview, ImpostorExample
from enrollment.models import FaceEmbedding, FaceImage, Person

from .conftest import enroll_vector, fake_face, make_person, near, unit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery", "media")]


def post(camera, data: bytes):
    return camera.decided(data)


def as_role(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def alice(site):
    person = make_person("Alice", sites=[site])
    enroll_vector(person, unit(1))
    return person


def test_not_this_person_keeps_that_face_from_being_let_in_as_them(fake_pipeline, camera, alice, staff):
    # Mallory looks enough like Alice to be let in at the site's threshold (0.9).
    mallory = fake_pipeline.register((21, 21, 21), [fake_face(near(unit(1), 0.6, seed=3))])
    first = post(camera, mallory)
    assert (first["decision"], first["person"]) == ("granted", alice.pk)

    response = as_role(staff.operator).post(f"/api/v1/events/{first['id']}/review/", {"verdict": "not_person"},
                                            format="json")
    assert response.status_code == 201, response.content
    assert response.json()["person"] == alice.pk and response.json()["reviewer"] == "operator-user"
    assert ImpostorExample.objects.filter(person=alice).count() == 1

    # The same face, and one very near it, are no longer let in as Alice ...
    again = post(camera, fake_pipeline.register((22, 22, 22), [fake_face(near(unit(1), 0.6, seed=3))]))
    assert again["decision"] == "unknown" and "marked 'not Alice'" in again["reason"]
    assert again["faces"][0]["distance"] == pytest.approx(0.6, abs=1e-3)
    # ... while Alice herself, nearer her own photos than the impostor, still is.
    herself = post(camera, fake_pipeline.register((23, 23, 23), [fake_face(near(unit(1), 0.1, seed=8))]))
    assert (herself["decision"], herself["person"]) == ("granted", alice.pk)


def test_this_is_somebody_can_add_the_face_to_their_photos(fake_pipeline, camera, alice, staff, site):
    bob = make_person("Bob", sites=[site])
    event = post(camera, fake_pipeline.register((24, 24, 24), [fake_face(unit(7))]))
    assert event["decision"] == "unknown"
    response = as_role(staff.admin).post(f"/api/v1/events/{event['id']}/review/", {
        "verdict": "is_person", "person": bob.pk, "add_to_enrollment": True}, format="json")
    assert response.status_code == 201 and response.json()["added_to_enrollment"] is True
    photo = FaceImage.objects.get(person=bob)
    assert photo.status == "enrolled" and photo.image and photo.box and photo.original_name == f"event {event['id']}"
    assert FaceEmbedding.objects.get(person=bob).model_name == "fake"
    # Bob is now recognised from that face.
    again = post(camera, fake_pipeline.register((25, 25, 25), [fake_face(near(unit(7), 0.2, seed=1))]))
    assert (again["decision"], again["person"]) == ("granted", bob.pk)


def test_review_rules_and_roles(fake_pipeline, camera, alice, staff):
    event = post(camera, fake_pipeline.register((26, 26, 26), [fake_face(unit(1))]))
    url = f"/api/v1/events/{event['id']}/review/"
    assert as_role(staff.auditor).post(url, {"verdict": "confirmed"}, format="json").status_code == 403
    assert as_role(staff.norole).get(url).status_code == 403
    bad = as_role(staff.operator).post(url, {"verdict": "is_person"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_review"
    bad = as_role(staff.operator).post(url, {"verdict": "confirmed", "face": 5}, format="json")
    assert bad.status_code == 400 and "no face 5" in bad.json()["detail"]
    assert as_role(staff.operator).post(url, {"verdict": "confirmed"}, format="json").status_code == 201
    listed = as_role(staff.auditor).get(url).json()
    assert [r["verdict"] for r in listed] == ["confirmed"]
    assert EventReview.objects.count() == 1


def test_a_stranger_seen_three_times_is_one_group_to_enroll(fake_pipeline, camera, alice, staff, site):
    stranger = unit(30)
    for i in range(3):
        post(camera, fake_pipeline.register((30 + i, 0, 0), [fake_face(near(stranger, 0.15, seed=i))]))
    post(camera, fake_pipeline.register((40, 0, 0), [fake_face(unit(99))]))  # somebody else, once
    groups = as_role(staff.auditor).get("/api/v1/strangers/").json()
    assert [g["count"] for g in groups] == [3]
    response = as_role(staff.operator).post("/api/v1/strangers/act/", {
        "action": "enroll", "faces": groups[0]["faces"], "name": "Visitor", "site": site.pk}, format="json")
    assert response.status_code == 201 and response.json()["photos"] == 3
    visitor = Person.objects.get(name="Visitor")
    assert list(visitor.sites.all()) == [site]
    assert as_role(staff.auditor).get("/api/v1/strangers/").json() == []  # handled: gone from the page
    nxt = post(camera, fake_pipeline.register((41, 0, 0), [fake_face(near(stranger, 0.2, seed=9))]))
    assert (nxt["decision"], nxt["person"]) == ("granted", visitor.pk)


def test_dismissed_strangers_leave_the_list(fake_pipeline, camera, staff):
    for i in range(2):
        post(camera, fake_pipeline.register((50 + i, 0, 0), [fake_face(near(unit(50), 0.1, seed=i))]))
    (group,) = as_role(staff.admin).get("/api/v1/strangers/").json()
    assert as_role(staff.auditor).post("/api/v1/strangers/act/", {"action": "dismiss", "faces": group["faces"]},
                                       format="json").status_code == 403
    response = as_role(staff.operator).post("/api/v1/strangers/act/", {"action": "dismiss", "faces": group["faces"]},
                                            format="json")
    assert response.json() == {"dismissed": 2}
    assert as_role(staff.admin).get("/api/v1/strangers/").json() == []


def test_tuning_api_replays_events_at_a_candidate(fake_pipeline, camera, alice, staff, site):
    event = post(camera, fake_pipeline.register((60, 0, 0), [fake_face(near(unit(1), 0.5, seed=2))]))
    url = f"/api/v1/sites/{site.pk}/tuning/"
    assert as_role(staff.operator).get(url).status_code == 403
    same = as_role(staff.admin).get(url).json()
    assert same["what_if"] == {"examined": 1, "changed": []}
    stricter = as_role(staff.admin).get(url, {"candidate": 0.4}).json()
    assert stricter["what_if"]["changed"] == [{"event": event["id"], "was": "granted", "now": "unknown",
                                               "person": "", "reason": stricter["what_if"]["changed"][0]["reason"]}]
    assert AccessEvent.objects.get(pk=event["id"]).decision == "granted"  # a replay changes nothing stored
    # An event another model decided (before a model switch) is not replayed against this model's threshold.
    AccessEvent.objects.filter(pk=event["id"]).update(model_name="another-model")
    assert as_role(staff.admin).get(url, {"candidate": 0.4}).json()["what_if"] == {"examined": 0, "changed": []}
