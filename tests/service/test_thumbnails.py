"""Thumbnails are made by the server and cached by the browser: the access log and the strangers page link a
few-KB JPEG instead of the full snapshot; a face thumbnail is the face itself; a revalidation answers 304."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.test import Client
from PIL import Image

from access.models import AccessEvent, AccessEventFace

pytestmark = pytest.mark.django_db


def full_hd_snapshot() -> bytes:
    """1920x1080 noise (a JPEG that does not shrink to nothing), with a white square where the face is."""
    pixels = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    pixels[400:600, 900:1100] = 255
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_event_and_face_thumbnails(staff, site, camera, media):
    data = full_hd_snapshot()
    event = AccessEvent.objects.create(camera=camera.camera, site=site, received_at="2026-05-01T10:00:00Z",
                                       status="done", decision="unknown", image_width=1920, image_height=1080)
    event.refresh_from_db()
    event.snapshot.save("door.jpg", ContentFile(data))
    AccessEventFace.objects.create(event=event, index=0, decision="unknown", box=[900, 400, 1100, 600],
                                   distance=1.3)
    client = Client()
    client.force_login(staff.auditor)

    thumb = client.get(f"/events/{event.pk}/thumb/")
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert thumb["Cache-Control"] == "private, max-age=3600" and thumb["ETag"]
    picture = Image.open(io.BytesIO(thumb.content))
    assert max(picture.size) == 160 and len(thumb.content) < len(data) / 20
    again = client.get(f"/events/{event.pk}/thumb/", HTTP_IF_NONE_MATCH=thumb["ETag"])
    assert again.status_code == 304 and not again.content

    face = Image.open(io.BytesIO(client.get(f"/events/{event.pk}/faces/0/thumb/").content))
    assert face.size == (112, 112)
    middle = np.asarray(face.convert("L"))[40:72, 40:72]
    assert middle.mean() > 240  # the face (the white square) fills the centre of its thumbnail

    log = client.get("/events/").content.decode()
    assert f"/events/{event.pk}/thumb/" in log and f"/events/{event.pk}/snapshot/" not in log
    assert client.get(f"/events/{event.pk}/faces/5/thumb/").status_code == 404
    no_role = Client()
    no_role.force_login(staff.norole)
    assert no_role.get(f"/events/{event.pk}/thumb/").status_code == 403
