"""Serializers whose fields are built from the model once per class (faceaccess.api.serializers): the same
answers as a fresh build, no introspection after the first, and no field shared between two instances."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from rest_framework import serializers
from rest_framework.request import Request

from access.api.serializers import AccessEventFaceSerializer, AccessEventSerializer, WebhookDeliverySerializer
from access.models import AccessEvent, AccessEventFace

from .conftest import make_person

pytestmark = pytest.mark.django_db

CLASSES = (AccessEventSerializer, AccessEventFaceSerializer, WebhookDeliverySerializer)


@pytest.fixture
def event(site, camera):
    alice = make_person("Alice", sites=[site])
    event = AccessEvent.objects.create(camera=camera.camera, site=site, received_at="2026-05-01T10:00:00Z",
                                       status="done", decision="granted", person=alice,
                                       reason=f"matched {{person:{alice.pk}}} at 0.500")
    AccessEventFace.objects.create(event=event, index=0, box=[1, 2, 3, 4], landmarks=[[1, 2]] * 5, score=0.99,
                                   decision="granted", reason=f"matched {{person:{alice.pk}}}", nearest_person=alice,
                                   distance=0.5)
    return AccessEvent.objects.select_related("person").get(pk=event.pk)


def test_fields_are_built_once_per_class_and_give_the_same_answer(event, monkeypatch):
    for cls in CLASSES:
        monkeypatch.delattr(cls, "_fields_built_once", raising=False)
    builds = []
    original = serializers.ModelSerializer.get_fields

    def counting(self):
        builds.append(type(self).__name__)
        return original(self)

    monkeypatch.setattr(serializers.ModelSerializer, "get_fields", counting)
    context = {"request": Request(RequestFactory().get("/"))}
    first = AccessEventSerializer(event, context=context).data
    # (no webhook delivery to show: that serializer's fields are never asked for)
    assert sorted(builds) == ["AccessEventFaceSerializer", "AccessEventSerializer"]
    second = AccessEventSerializer(event, context=context).data
    assert len(builds) == 2  # nothing introspected again
    assert first == second
    assert first["reason"] == "matched Alice at 0.500" and first["faces"][0]["reason"] == "matched Alice"
    assert first["person_name"] == "Alice" and first["url"].endswith(f"/api/v1/events/{event.pk}/")


def test_each_instance_has_its_own_fields(event):
    one, two = AccessEventSerializer(event), AccessEventSerializer(event)
    one.fields["reason"].label = "changed"
    assert two.fields["reason"].label != "changed"
    assert one.fields["faces"] is not two.fields["faces"]
