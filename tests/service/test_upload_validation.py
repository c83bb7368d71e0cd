"""Every bad upload gets a 4xx JSON error naming the problem and leaves no row and no file behind.

The web process reads only a photo's header (type and size), never its pixels (issue 9, defect 7): a file
cut short after its header is accepted and fails in the worker, as ``failed`` with a reason (see the end)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from access.models import AccessEvent
from enrollment.models import FaceImage

from .conftest import image_bytes, make_camera, make_person, media_files

pytestmark = pytest.mark.django_db
SNAPSHOTS = "/api/v1/snapshots/"


def noisy_jpeg(size: int = 200) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _named(data: bytes, name: str) -> io.BytesIO:
    f = io.BytesIO(data)
    f.name = name
    return f


BAD_IMAGES = [
    pytest.param(b"definitely not a picture\n" * 10, "not_an_image", 415, id="not-an-image"),
    pytest.param(b"", "empty_file", 400, id="zero-bytes"),
    pytest.param(image_bytes(fmt="GIF"), "unsupported_format", 415, id="gif"),
]


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]


def assert_nothing_stored(media) -> None:
    assert AccessEvent.objects.count() == 0
    assert FaceImage.objects.count() == 0
    assert media_files(media) == []


def test_a_good_snapshot_stores_exactly_one_row_and_one_file(camera, media):
    response = camera.client().post(SNAPSHOTS, {"image": _named(noisy_jpeg(), "a.jpg")}, format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending" and body["url"].endswith(f"/api/v1/events/{body['id']}/")
    event = AccessEvent.objects.get()
    assert event.pk == body["id"] and event.site_id == camera.camera.site_id
    assert (event.image_width, event.image_height) == (200, 200)
    assert [p.name for p in media_files(media)] == [event.snapshot.name.rsplit("/", 1)[1]]
    assert event.snapshot.name.endswith(".jpg")


@pytest.mark.parametrize(("data", "code", "status"), BAD_IMAGES)
def test_bad_snapshot_image(camera, media, data, code, status):
    response = camera.client().post(SNAPSHOTS, {"image": _named(data, "snap.jpg")}, format="multipart")
    assert_error(response, status, code)
    assert_nothing_stored(media)


@pytest.mark.parametrize(("data", "code", "status"), BAD_IMAGES)
def test_bad_face_image(owner_client, media, data, code, status):
    person = make_person("Alice")
    response = owner_client.post(
        f"/api/v1/people/{person.pk}/faces/", {"image": _named(data, "face.jpg")}, format="multipart"
    )
    assert_error(response, status, code)
    assert_nothing_stored(media)


def test_over_the_size_limit(camera, media, settings):
    settings.FACEACCESS_MAX_UPLOAD_BYTES = 4_000
    data = noisy_jpeg()
    assert len(data) > 4_000
    response = camera.client().post(SNAPSHOTS, {"image": _named(data, "big.jpg")}, format="multipart")
    assert_error(response, 413, "too_large")
    assert_nothing_stored(media)


def test_far_over_the_size_limit_is_refused_from_the_header(camera, media, settings):
    settings.FACEACCESS_MAX_UPLOAD_BYTES = 1_000
    data = noisy_jpeg(400)  # ~100 kB, beyond limit + multipart slack
    response = camera.client().post(SNAPSHOTS, {"image": _named(data, "big.jpg")}, format="multipart")
    assert_error(response, 413, "too_large")
    assert "about" in response.json()["detail"]
    assert_nothing_stored(media)


def test_over_the_pixel_limit(camera, media, settings):
    settings.FACEACCESS_MAX_PIXELS = 100 * 100
    response = camera.client().post(SNAPSHOTS, {"image": _named(noisy_jpeg(101), "wide.jpg")}, format="multipart")
    assert_error(response, 413, "too_many_pixels")
    assert "10,201" in response.json()["detail"]
    assert_nothing_stored(media)


def test_wrong_field(camera, media):
    response = camera.client().post(SNAPSHOTS, {"photo": _named(noisy_jpeg(), "a.jpg")}, format="multipart")
    assert_error(response, 400, "wrong_field")
    assert "'image'" in response.json()["detail"] and "photo" in response.json()["detail"]
    assert_nothing_stored(media)


def test_no_file_at_all(camera, media):
    response = camera.client().post(SNAPSHOTS, {"captured_at": "2026-01-01T10:00:00Z"}, format="multipart")
    assert_error(response, 400, "missing_image")
    assert_nothing_stored(media)


def test_json_instead_of_multipart(camera, media):
    response = camera.client().post(SNAPSHOTS, {"image": "aGVsbG8="}, format="json")
    assert_error(response, 415, "unsupported_media_type")
    assert_nothing_stored(media)


def test_missing_api_key(anon_client, camera, media):
    response = anon_client.post(SNAPSHOTS, {"image": _named(noisy_jpeg(), "a.jpg")}, format="multipart")
    assert_error(response, 401, "missing_api_key")
    assert response["WWW-Authenticate"] == "Api-Key"
    assert_nothing_stored(media)


@pytest.mark.parametrize("key", ["fa_00000000_nope", "garbage", "fa_short_x"])
def test_wrong_api_key(anon_client, camera, media, key):
    anon_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    response = anon_client.post(SNAPSHOTS, {"image": _named(noisy_jpeg(), "a.jpg")}, format="multipart")
    assert_error(response, 401, "invalid_api_key")
    assert_nothing_stored(media)


def test_key_of_another_camera_with_a_forged_secret(anon_client, camera, media):
    prefix = camera.key.split("_")[1]
    anon_client.credentials(HTTP_AUTHORIZATION=f"Api-Key fa_{prefix}_forged")
    response = anon_client.post(SNAPSHOTS, {"image": _named(noisy_jpeg(), "a.jpg")}, format="multipart")
    assert_error(response, 401, "invalid_api_key")
    assert_nothing_stored(media)


def test_inactive_camera(site, media):
    cam = make_camera(site, "old door", active=False)
    response = cam.client().post(SNAPSHOTS, {"image": _named(noisy_jpeg(), "a.jpg")}, format="multipart")
    assert_error(response, 403, "camera_inactive")
    assert_nothing_stored(media)


@pytest.mark.parametrize(
    ("query", "data", "code"),
    [
        ("?wait=11", {}, "invalid_wait"),
        ("?wait=soon", {}, "invalid_wait"),
        ("", {"captured_at": "yesterday"}, "invalid_captured_at"),
        ("", {"idempotency_key": "k" * 129}, "invalid_idempotency_key"),
    ],
)
def test_bad_parameters(camera, media, query, data, code):
    response = camera.client().post(
        SNAPSHOTS + query, {"image": _named(noisy_jpeg(), "a.jpg"), **data}, format="multipart"
    )
    assert_error(response, 400, code)
    assert_nothing_stored(media)


def test_a_failing_save_leaves_no_file(camera, media, monkeypatch):
    # The row insert fails after the file was written: the file must go too.
    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(AccessEvent, "save", boom)
    response = camera.client().post(SNAPSHOTS, {"image": _named(noisy_jpeg(), "a.jpg")}, format="multipart")
    assert_error(response, 500, "server_error")  # JSON with an error id, the traceback only in the log
    assert "database went away" not in response.content.decode()
    assert media_files(media) == []


# A truncated photo: its header is fine, so the web process (which no longer decodes pixels) accepts it,
# and the worker's decode fails it with a reason.
TRUNCATED = noisy_jpeg()[: len(noisy_jpeg()) // 2]


def test_a_truncated_snapshot_fails_in_the_worker_with_a_reason(camera, media, fake_pipeline):
    from access.snapshots.processing import process_snapshot

    response = camera.client().post(SNAPSHOTS, {"image": _named(TRUNCATED, "snap.jpg")}, format="multipart")
    assert response.status_code == 202, response.content
    assert process_snapshot(response.json()["id"]) == "failed"
    event = AccessEvent.objects.get()
    assert event.status == "failed" and event.reason.startswith("bad image:") and "truncated" in event.reason
    assert fake_pipeline.calls == 0


def test_a_truncated_face_photo_fails_in_the_worker_with_a_reason(owner_client, media, fake_pipeline):
    from enrollment.embedding import embed_face_image

    person = make_person("Alice")
    response = owner_client.post(
        f"/api/v1/people/{person.pk}/faces/", {"image": _named(TRUNCATED, "face.jpg")}, format="multipart"
    )
    assert response.status_code == 202, response.content
    embed_face_image(response.json()["id"])
    face = FaceImage.objects.get()
    assert face.status == "failed" and face.reason.startswith("bad image:") and "truncated" in face.reason
