"""Issue 9, defect 10: MPO JPEGs (phones, some cameras: a JPEG with more frames after the first) are
accepted at upload and decoded by the worker, first frame only."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from access.models import AccessEvent
from faceaccess.uploads import validate_image_bytes
from recognition.engine import load_image

from .conftest import fake_face, make_person, media_files, unit

SNAPSHOTS = "/api/v1/snapshots/"
FIRST, SECOND = (40, 40, 40), (0, 0, 200)


def mpo_bytes(first=FIRST, size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, first).save(buf, "MPO", save_all=True, append_images=[Image.new("RGB", (32, 24), SECOND)])
    data = buf.getvalue()
    assert Image.open(io.BytesIO(data)).format == "MPO"
    return data


def named(data: bytes, name: str) -> io.BytesIO:
    f = io.BytesIO(data)
    f.name = name
    return f


def test_the_upload_check_accepts_an_mpo_as_a_jpeg():
    upload = validate_image_bytes(mpo_bytes(), "phone.jpg")
    assert (upload.extension, upload.width, upload.height) == ("jpg", 64, 48)


def test_the_engine_decodes_the_first_frame_of_an_mpo():
    image = load_image(mpo_bytes())
    assert image.shape == (48, 64, 3)
    assert np.abs(image.astype(int) - FIRST).max() <= 3  # JPEG rounding


@pytest.mark.django_db
def test_an_mpo_face_photo_is_accepted(owner_client, media):
    person = make_person("Alice")
    response = owner_client.post(f"/api/v1/people/{person.pk}/faces/", {"image": named(mpo_bytes(), "face.jpg")},
                                 format="multipart")
    assert response.status_code in (201, 202), response.content
    assert [p.suffix for p in media_files(media)] == [".jpg"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_celery", "media")
def test_an_mpo_snapshot_is_decided_from_its_first_frame(fake_pipeline, camera, site):
    from .conftest import enroll_vector

    alice = make_person("Alice", sites=[site])
    enroll_vector(alice, unit(1))
    fake_pipeline.register(FIRST, [fake_face(unit(1))])
    response = camera.client().post(SNAPSHOTS + "?wait=2", {"image": named(mpo_bytes(), "snap.jpg")},
                                    format="multipart")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["decision"], body["person"]) == ("done", "granted", alice.pk), body
    assert (body["image_width"], body["image_height"]) == (64, 48)
    assert AccessEvent.objects.get().snapshot.name.endswith(".jpg")
