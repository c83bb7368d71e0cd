"""One photo cannot hold the engine for seconds (issue 17, item 2).

A door snapshot above its site's ``max_snapshot_pixels`` is refused before anything is stored; a PNG or WebP
above FACEACCESS_MAX_DECODED_PIXELS (decoded in full by the worker) is refused on every upload path, while a
JPEG above it is accepted and decoded at reduced size by the worker.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from access.models import AccessEvent, Site

from .conftest import make_person
from .test_upload_validation import SNAPSHOTS, _named, assert_error, assert_nothing_stored

pytestmark = pytest.mark.django_db


def picture(width: int, height: int, fmt: str) -> bytes:
    pixels = np.random.default_rng(1).integers(0, 255, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def test_a_snapshot_over_the_sites_resolution_is_refused_with_nothing_stored(camera, media):
    Site.objects.filter(pk=camera.camera.site_id).update(max_snapshot_pixels=300 * 200)
    response = camera.client().post(SNAPSHOTS, {"image": _named(picture(301, 200, "JPEG"), "big.jpg")},
                                    format="multipart")
    assert_error(response, 413, "too_many_pixels")
    detail = response.json()["detail"]
    assert "301x200" in detail and "60,000" in detail and "max_snapshot_pixels" in detail
    assert_nothing_stored(media)
    ok = camera.client().post(SNAPSHOTS, {"image": _named(picture(300, 200, "JPEG"), "ok.jpg")}, format="multipart")
    assert ok.status_code == 202, ok.content  # at the limit: accepted


def test_zero_means_only_the_servers_limits(camera, media):
    Site.objects.filter(pk=camera.camera.site_id).update(max_snapshot_pixels=0)
    response = camera.client().post(SNAPSHOTS, {"image": _named(picture(400, 300, "JPEG"), "a.jpg")},
                                    format="multipart")
    assert response.status_code == 202, response.content


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_a_png_or_webp_too_large_to_decode_in_full_is_refused(camera, owner_client, media, settings, fmt):
    settings.FACEACCESS_MAX_DECODED_PIXELS = 200 * 100
    data = picture(201, 100, fmt)
    response = camera.client().post(SNAPSHOTS, {"image": _named(data, "big.img")}, format="multipart")
    assert_error(response, 413, "too_many_pixels")
    assert "decoded in full" in response.json()["detail"] and "JPEG" in response.json()["detail"]
    person = make_person("Alice")
    response = owner_client.post(f"/api/v1/people/{person.pk}/faces/", {"image": _named(data, "face.img")},
                                 format="multipart")
    assert_error(response, 413, "too_many_pixels")
    assert_nothing_stored(media)


def test_a_png_over_the_full_decode_bound_is_refused_where_a_jpeg_is_not(camera, media, settings):
    settings.FACEACCESS_MAX_FULL_DECODE_PIXELS = 200 * 100  # tighter than FACEACCESS_MAX_DECODED_PIXELS (4K)
    response = camera.client().post(SNAPSHOTS, {"image": _named(picture(201, 100, "PNG"), "a.png")},
                                    format="multipart")
    assert_error(response, 413, "too_many_pixels")
    assert_nothing_stored(media)
    response = camera.client().post(SNAPSHOTS, {"image": _named(picture(201, 100, "JPEG"), "a.jpg")},
                                    format="multipart")
    assert response.status_code == 202, response.content


def test_a_large_jpeg_is_accepted_for_reduced_decoding(camera, media, settings):
    settings.FACEACCESS_MAX_DECODED_PIXELS = 200 * 100
    response = camera.client().post(SNAPSHOTS, {"image": _named(picture(400, 200, "JPEG"), "a.jpg")},
                                    format="multipart")
    assert response.status_code == 202, response.content
    assert AccessEvent.objects.count() == 1


def test_the_sites_limit_is_in_the_api_and_defaults_to_4k(owner_client):
    response = owner_client.post("/api/v1/sites/", {"name": "Lobby"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["max_snapshot_pixels"] == 3840 * 2160
    url = response.json()["url"]
    response = owner_client.patch(url, {"max_snapshot_pixels": 1920 * 1080}, format="json")
    assert response.status_code == 200 and response.json()["max_snapshot_pixels"] == 1920 * 1080
