"""Review safeguards: "Not <name>" only on an event that let somebody in, and it asks first; a searchable
person picker; enrolling a stranger group under the name of someone already enrolled is refused unless the
reviewer says it is a different person."""

from __future__ import annotations

import pytest
from django.test import Client

from access.models import AccessEvent, AccessEventFace
from enrollment.models import Person

from .conftest import make_person, unit

pytestmark = pytest.mark.django_db


def operator(staff) -> Client:
    client = Client()
    client.force_login(staff.operator)
    return client


def event_with(site, camera, decision: str, person) -> AccessEvent:
    event = AccessEvent.objects.create(camera=camera.camera, site=site, received_at="2026-05-01T10:00:00Z",
                                       status="done", decision=decision, person=person if decision == "granted"
                                       else None)
    AccessEventFace.objects.create(event=event, index=0, decision=decision, box=[0, 0, 50, 50], nearest_person=person,
                                   distance=0.7 if decision == "granted" else 1.2,
                                   embedding=[float(x) for x in unit(3)])
    return event


def test_not_x_only_where_somebody_was_let_in_and_it_asks_first(staff, site, camera):
    ada = make_person("Ada", sites=[site])
    granted = operator(staff).get(f"/events/{event_with(site, camera, 'granted', ada).pk}/").content.decode()
    assert "data-not-person" in granted and 'data-confirm="Record that this face is not Ada?' in granted
    assert 'data-filter-select="#review-person"' in granted
    unknown = operator(staff).get(f"/events/{event_with(site, camera, 'unknown', ada).pk}/").content.decode()
    assert "data-not-person" not in unknown and "Not Ada" not in unknown


def test_a_stranger_group_under_an_existing_name_is_refused_unless_confirmed(staff, site, camera):
    make_person("Ada", sites=[site])
    face = event_with(site, camera, "unknown", None).faces.get()
    client = operator(staff)
    response = client.post("/strangers/act/", {"action": "enroll", "face": [face.pk], "name": "ada"}, follow=True)
    assert "already exists" in response.content.decode() and Person.objects.count() == 1
    client.post("/strangers/act/", {"action": "enroll", "face": [face.pk], "name": "Ada", "same_name": "ok"})
    assert Person.objects.filter(name="Ada").count() == 2


def test_a_reviewer_takes_back_their_own_review_and_not_x_forgets_the_impostor(staff, site, camera):
    from access.models import EventReview, ImpostorExample

    ada = make_person("Ada", sites=[site])
    event = event_with(site, camera, "granted", ada)
    client = operator(staff)
    client.post(f"/events/{event.pk}/review/", {"verdict": "not_person"})
    review = EventReview.objects.get()
    assert ImpostorExample.objects.count() == 1
    html = client.get(f"/events/{event.pk}/").content.decode()
    assert "data-undo" in html and 'data-key="c"' in html
    other = Client()
    other.force_login(staff.auditor)
    assert other.post(f"/events/{event.pk}/review/{review.pk}/undo/").status_code == 403
    client.post(f"/events/{event.pk}/review/{review.pk}/undo/")
    assert not EventReview.objects.exists() and not ImpostorExample.objects.exists()


def test_next_unreviewed_leads_through_the_queue(staff, site, camera):
    import datetime as dt

    from access.models import AccessEvent

    older = AccessEvent.objects.create(camera=camera.camera, site=site, status="done", decision="unknown",
                                       received_at=dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC))
    newer = AccessEvent.objects.create(camera=camera.camera, site=site, status="done", decision="denied",
                                       received_at=dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC))
    AccessEventFace.objects.create(event=newer, index=0, decision="denied", box=[0, 0, 9, 9])
    client = operator(staff)
    assert f'href="/events/{older.pk}/" data-key="j"' in client.get(f"/events/{newer.pk}/").content.decode()
    response = client.post(f"/events/{newer.pk}/review/", {"verdict": "confirmed", "then": "next"})
    assert response["Location"] == f"/events/{older.pk}/"


def test_undoing_is_x_and_add_removes_the_photo_it_added(staff, site, camera, media):
    from django.core.files.base import ContentFile

    from access.models import EventReview
    from access.review.reviews import review, undo_review
    from enrollment.models import FaceEmbedding, FaceImage

    from .conftest import image_bytes

    ada = make_person("Ada", sites=[site])
    event = AccessEvent.objects.get(pk=event_with(site, camera, "unknown", None).pk)
    event.snapshot.save("snap.jpg", ContentFile(image_bytes()), save=True)
    done = review(event, "is_person", staff.operator, person=ada, add_to_enrollment=True)
    assert done.added_to_enrollment and FaceImage.objects.filter(person=ada).count() == 1
    undo_review(EventReview.objects.get(), staff.operator)
    assert not FaceImage.objects.filter(person=ada).exists() and not FaceEmbedding.objects.filter(person=ada).exists()
