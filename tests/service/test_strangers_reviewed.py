"""Reviews show on the Strangers page: a face a reviewer named ("this is <person>") is no stranger any more and
leaves its group."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from access.models import AccessEvent

from .conftest import fake_face, make_person, near, unit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery", "media")]


def test_a_named_face_leaves_the_strangers(fake_pipeline, camera, staff, site):
    bob = make_person("Bob", sites=[site])
    stranger = unit(60)
    for i in range(3):
        camera.decided(fake_pipeline.register((60 + i, 0, 0), [fake_face(near(stranger, 0.1, seed=i))]))
    client = APIClient()
    client.force_authenticate(staff.operator)
    assert [g["count"] for g in client.get("/api/v1/strangers/").json()] == [3]
    event = AccessEvent.objects.filter(decision="unknown").order_by("id").first()
    response = client.post(f"/api/v1/events/{event.pk}/review/", {"verdict": "is_person", "person": bob.pk},
                           format="json")
    assert response.status_code < 300, response.content
    assert [g["count"] for g in client.get("/api/v1/strangers/").json()] == [2]
