"""The audit trail is append-only: erasing a person keeps every entry (their personal data replaced by a
placeholder) and logs the erasure without the name; only admins erase access history. Actions that were not
logged before are: site membership added, reviews ("not X" included), face picks, photo deletions, model
switches, policy changes."""

from __future__ import annotations

import json

import pytest
from auditlog.models import LogEntry
from django.forms.models import model_to_dict
from django.test import Client

from access.models import AccessEvent, AccessEventFace
from enrollment.models import FaceImage, Person

from .conftest import make_person, unit

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _all_entries() -> str:
    return json.dumps([model_to_dict(e) for e in LogEntry.objects.all()], default=str)


def test_erasing_a_person_keeps_the_entries_without_the_name(staff, site):
    client = logged_in(staff.operator)
    client.post("/people/new/", {"name": "Zebulon Quartermain", "external_id": "B-7731", "active": "on",
                                 "notes": "Zebulon works nights", "sites": [site.pk]})
    zeb = Person.objects.get(name="Zebulon Quartermain")
    client.post(f"/people/{zeb.pk}/edit/", {"name": "Zebulon Quartermain", "external_id": "B-7731",
                                           "active": "on", "notes": "moved to days", "sites": [site.pk]})
    before = LogEntry.objects.count()
    assert before >= 3 and "Zebulon" in _all_entries()

    response = client.post(f"/people/{zeb.pk}/delete/")
    assert response.status_code == 302 and not Person.objects.filter(pk=zeb.pk).exists()
    text = _all_entries()
    assert "Zebulon" not in text and "Quartermain" not in text and "B-7731" not in text and "nights" not in text
    assert LogEntry.objects.count() > before  # nothing removed; the deletion and the erasure were added
    erased = LogEntry.objects.filter(additional_data__what="person erased").get()
    assert erased.actor == staff.operator and erased.object_pk == str(zeb.pk) and "[erased]" in erased.object_repr
    assert LogEntry.objects.filter(object_pk=str(zeb.pk), content_type__model="person").count() >= 4


def test_only_admins_erase_access_history(staff, site, camera):
    for role in ("operator", "admin"):
        person = make_person(f"Someone {role}", sites=[site])
        event = AccessEvent.objects.create(camera=camera.camera, site=site, received_at="2026-05-01T10:00:00Z",
                                           status="done", decision="granted", person=person, snapshot="s/x.jpg")
        response = logged_in(getattr(staff, role)).post(f"/people/{person.pk}/delete/", {"with_history": "on"})
        event.refresh_from_db()
        if role == "operator":
            assert response.status_code == 403 and Person.objects.filter(pk=person.pk).exists()
            assert event.snapshot == "s/x.jpg"
        else:
            assert response.status_code == 302 and event.snapshot == ""
    from rest_framework.test import APIClient

    person = make_person("Via the API", sites=[site])
    api = APIClient()
    api.force_authenticate(staff.operator)
    assert api.delete(f"/api/v1/people/{person.pk}/?with_history=true").status_code == 403
    assert api.delete(f"/api/v1/people/{person.pk}/").status_code == 204


def _whats() -> list[tuple[str, str]]:
    return [(e.content_type.model, e.additional_data.get("what") if isinstance(e.additional_data, dict) else
             {0: "create", 1: "update", 2: "delete"}[e.action]) for e in LogEntry.objects.order_by("id")]


def test_membership_reviews_photo_deletion_and_policy_changes_are_logged(staff, site, camera, media):
    alice = make_person("Alice")
    LogEntry.objects.all().delete()  # (the test's own set-up; the product never deletes entries)
    alice.sites.add(site)
    assert ("accessgrant", "create") in _whats()

    event = AccessEvent.objects.create(camera=camera.camera, site=site, received_at="2026-05-01T10:00:00Z",
                                       status="done", decision="granted", person=alice)
    AccessEventFace.objects.create(event=event, index=0, decision="granted", box=[0, 0, 10, 10], nearest_person=alice,
                                   distance=0.5, embedding=[float(x) for x in unit(1)])
    client = logged_in(staff.operator)
    client.post(f"/events/{event.pk}/review/", {"verdict": "not_person", "face": "0"})
    reviews = LogEntry.objects.filter(content_type__model="eventreview")
    assert reviews.count() == 1 and reviews.get().actor == staff.operator
    assert "not_person" in json.dumps(reviews.get().changes)

    photo = FaceImage.objects.create(person=alice, image="faces/a.png", original_name="alice.png")
    client.post(f"/photos/{photo.pk}/delete/")
    assert ("faceimage", "delete") in _whats()

    form = {k: v for k, v in model_to_dict(site).items() if v is not None and not isinstance(v, (dict, list))}
    response = logged_in(staff.admin).post(f"/sites/{site.pk}/edit/", {**form, "detection_policy": "close"})
    assert response.status_code == 302, response.content.decode()[:2000]
    site_changes = [e.changes for e in LogEntry.objects.filter(content_type__model="site")]
    assert any("detection_policy" in c for c in site_changes), site_changes


def test_a_model_switch_is_logged(staff):
    from recognition.models import EmbedderState

    row = EmbedderState.objects.first() or EmbedderState.objects.create(active_name="sface")
    LogEntry.objects.all().delete()
    row.target_name, row.state = "facenet-irv1", EmbedderState.State.REEMBEDDING
    row.save()
    row.done = 5  # progress is not an action: not logged
    row.save()
    entries = LogEntry.objects.filter(content_type__model="embedderstate")
    assert entries.count() == 1 and "target_name" in entries.get().changes


def test_erasure_redacts_whole_names_only(staff, site):
    client = logged_in(staff.operator)
    for name in ("Ann", "Anna Berg"):
        client.post("/people/new/", {"name": name, "active": "on", "sites": [site.pk]})
    client.post(f"/people/{Person.objects.get(name='Ann').pk}/delete/")
    text = _all_entries()
    assert "Anna Berg" in text and "[erased]a" not in text
