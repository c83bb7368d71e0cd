"""Deleting a face or a person removes their files and embeddings; the access log keeps its rows."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from access.models import AccessEvent, AccessEventFace
from enrollment.models import FaceEmbedding, FaceImage, Person

from .conftest import fake_face, make_person, media_files, unit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


def upload(client, person, data: bytes) -> int:
    f = io.BytesIO(data)
    f.name = "face.png"
    response = client.post(f"/api/v1/people/{person.pk}/faces/", {"image": f}, format="multipart")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def snapshot(camera, data: bytes) -> dict:
    f = io.BytesIO(data)
    f.name = "snap.png"
    return camera.client().post("/api/v1/snapshots/?wait=2", {"image": f}, format="multipart").json()


def test_delete_a_face_image(owner_client, fake_pipeline, media):
    alice = make_person("Alice")
    keep = upload(owner_client, alice, fake_pipeline.register((1, 1, 1), [fake_face(unit(1))]))
    gone = upload(owner_client, alice, fake_pipeline.register((2, 2, 2), [fake_face(unit(2))]))
    assert len(media_files(media)) == 4  # two photos, two crops
    doomed = FaceImage.objects.get(pk=gone)
    paths = [doomed.image.path, doomed.crop.path]
    assert owner_client.delete(f"/api/v1/faces/{gone}/").status_code == 204
    assert not any(Path(p).exists() for p in paths)
    assert len(media_files(media)) == 2
    assert list(FaceEmbedding.objects.values_list("face_image_id", flat=True)) == [keep]
    assert owner_client.get(f"/api/v1/faces/{gone}/").status_code == 404


def test_delete_a_person_keeps_their_access_events(owner_client, fake_pipeline, site, camera, media):
    alice = make_person("Alice", sites=[site])
    bob = make_person("Bob", sites=[site])
    upload(owner_client, alice, fake_pipeline.register((1, 1, 1), [fake_face(unit(1))]))
    upload(owner_client, alice, fake_pipeline.register((2, 2, 2), [fake_face(unit(11))]))
    upload(owner_client, bob, fake_pipeline.register((3, 3, 3), [fake_face(unit(2))]))
    camera.camera.allowed_people.set([alice, bob])
    event = snapshot(camera, fake_pipeline.register((4, 4, 4), [fake_face(unit(1))]))
    assert (event["decision"], event["person"]) == ("granted", alice.pk)
    files_before = len(media_files(media))
    assert files_before == 7  # 3 photos + 3 crops + 1 snapshot

    assert owner_client.delete(f"/api/v1/people/{alice.pk}/").status_code == 204

    assert not Person.objects.filter(pk=alice.pk).exists()
    assert not FaceImage.objects.filter(person_id=alice.pk).exists()
    assert not FaceEmbedding.objects.filter(person_id=alice.pk).exists()
    assert FaceEmbedding.objects.filter(person=bob).count() == 1
    assert len(media_files(media)) == 3  # Bob's photo and crop, the snapshot
    kept = AccessEvent.objects.get(pk=event["id"])
    assert (kept.decision, kept.person_id) == ("granted", None)
    face = AccessEventFace.objects.get(event=kept)
    assert face.nearest_person_id is None and face.distance is not None
    assert list(camera.camera.allowed_people.all()) == [bob]


def test_deleting_an_event_removes_its_snapshot(owner_client, fake_pipeline, camera, media):
    event = snapshot(camera, fake_pipeline.register((5, 5, 5), []))
    assert len(media_files(media)) == 1
    AccessEvent.objects.get(pk=event["id"]).delete()
    assert media_files(media) == []


def test_a_rolled_back_delete_keeps_the_files(owner_client, fake_pipeline, media):
    from django.db import transaction

    alice = make_person("Alice")
    upload(owner_client, alice, fake_pipeline.register((6, 6, 6), [fake_face(unit(1))]))
    pk = alice.pk
    with pytest.raises(RuntimeError), transaction.atomic():
        alice.delete()
        raise RuntimeError("changed my mind")
    assert len(media_files(media)) == 2
    assert FaceImage.objects.filter(person_id=pk).exists()
