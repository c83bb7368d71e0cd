"""Uploading a face photo: exactly one usable face becomes one embedding of the model that made it."""

from __future__ import annotations

import io

import pytest

from enrollment.embedding import embed_face_image, reembed_all
from enrollment.models import FaceEmbedding, FaceImage

from .conftest import fake_face, image_bytes, make_person, media_files, unit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


def upload(client, person, data: bytes):
    f = io.BytesIO(data)
    f.name = "alice_1.png"
    return client.post(f"/api/v1/people/{person.pk}/faces/", {"image": f}, format="multipart")


@pytest.fixture
def alice():
    return make_person("Alice")


def test_one_face_is_enrolled(owner_client, fake_pipeline, alice, media):
    response = upload(owner_client, alice, fake_pipeline.register((1, 1, 1), [fake_face(unit(1))]))
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"  # the answer was built before the task ran
    status_url = response["Location"]
    face = owner_client.get(status_url).json()
    assert (face["status"], face["reason"], face["faces_found"]) == ("enrolled", "", 1)
    assert face["detection_score"] == pytest.approx(0.99) and face["face_size_px"] == 120.0
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5
    (emb,) = FaceEmbedding.objects.filter(person=alice)
    assert (emb.model_name, emb.model_version) == ("fake", "1")
    assert list(emb.embedding) == pytest.approx(unit(1).tolist(), abs=1e-6)
    image = FaceImage.objects.get()
    assert image.crop.name.startswith(f"crops/{alice.pk}/") and image.image.name.startswith(f"faces/{alice.pk}/")
    assert len(media_files(media)) == 2  # photo + aligned crop
    listing = owner_client.get(f"/api/v1/people/{alice.pk}/faces/").json()
    assert [f["status"] for f in listing["results"]] == ["enrolled"]
    person = owner_client.get(f"/api/v1/people/{alice.pk}/").json()
    assert (person["face_count"], person["enrolled_count"]) == (1, 1)


@pytest.mark.parametrize(
    ("faces", "status", "reason"),
    [
        ([], "no_face", "no face found"),
        ([dict(size=120), dict(size=90)], "several_faces", "2 usable faces"),
        ([dict(size=20)], "no_face", "20 px"),
        ([dict(score=0.5)], "no_face", "detection score 0.50"),
    ],
    ids=["none", "two", "tiny", "unsure"],
)
def test_unusable_photos_end_in_their_status_with_a_reason(
    owner_client, fake_pipeline, alice, media, faces, status, reason
):
    data = fake_pipeline.register((2, 2, 2), [fake_face(unit(i), **kw) for i, kw in enumerate(faces)])
    face = owner_client.get(upload(owner_client, alice, data)["Location"]).json()
    assert face["status"] == status
    assert reason in face["reason"]
    assert not FaceEmbedding.objects.exists()


def test_a_small_background_face_does_not_block_enrollment(owner_client, fake_pipeline, alice, media):
    data = fake_pipeline.register((3, 3, 3), [fake_face(unit(1), size=150), fake_face(unit(2), size=25)])
    face = owner_client.get(upload(owner_client, alice, data)["Location"]).json()
    assert (face["status"], face["faces_found"]) == ("enrolled", 2)


def test_engine_failure_marks_the_image_failed(owner_client, fake_pipeline, alice, media):
    fake_pipeline.error = RuntimeError("out of memory")
    face = owner_client.get(upload(owner_client, alice, fake_pipeline.register((4, 4, 4), []))["Location"]).json()
    assert face["status"] == "failed" and "out of memory" in face["reason"]


def test_queue_failure_marks_the_image_failed(owner_client, alice, media, monkeypatch):
    from enrollment import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(tasks.embed_face_image, "delay", broker_down)
    response = upload(owner_client, alice, image_bytes((5, 5, 5)))
    assert response.status_code == 202
    image = FaceImage.objects.get()
    assert image.status == "failed" and "redis is down" in image.reason


def test_reembedding_with_another_model_adds_embeddings_and_keeps_statuses(
    owner_client, fake_pipeline, next_model, alice, media
):
    data = fake_pipeline.register((6, 6, 6), [fake_face(unit(1))])
    upload(owner_client, alice, data)
    upload(owner_client, alice, fake_pipeline.register((7, 7, 7), []))
    assert reembed_all("next") == {"embedded": 1, "no_face": 1}
    models = sorted(FaceEmbedding.objects.values_list("model_name", "model_version"))
    assert models == [("fake", "1"), ("next", "2")]
    assert sorted(FaceImage.objects.values_list("status", flat=True)) == ["enrolled", "no_face"]


def test_reembedding_with_the_current_model_replaces_its_embedding(owner_client, fake_pipeline, alice, media):
    data = fake_pipeline.register((8, 8, 8), [fake_face(unit(1))])
    upload(owner_client, alice, data)
    fake_pipeline.faces_by_color[(8, 8, 8)] = [fake_face(unit(9))]
    assert reembed_all() == {"enrolled": 1}
    (emb,) = FaceEmbedding.objects.all()
    assert list(emb.embedding) == pytest.approx(unit(9).tolist(), abs=1e-6)
    assert len(media_files(media)) == 2  # the old crop was replaced, not left behind


def test_a_photo_that_no_longer_yields_one_face_loses_its_embedding(owner_client, fake_pipeline, alice, media):
    upload(owner_client, alice, fake_pipeline.register((9, 9, 9), [fake_face(unit(1))]))
    fake_pipeline.faces_by_color[(9, 9, 9)] = []
    image = FaceImage.objects.get()
    assert embed_face_image(image.pk) == "no_face"
    assert not FaceEmbedding.objects.exists()


def test_an_image_deleted_before_the_worker_got_to_it(fake_pipeline):
    assert embed_face_image(123456) == "gone"
