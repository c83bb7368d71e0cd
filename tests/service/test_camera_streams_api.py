"""A camera's stream in the API: the source URL's credentials are stored apart and never shown again (not in the
API, not in the audit trail), bad sources and settings are refused with a 400 and nothing stored, and only the
bridge (with its token) reads the credentials and a key to post with."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry

from access.bridge import keys
from access.models import Camera

pytestmark = pytest.mark.django_db

SECRET = "Sup3r-S3cret!"


@pytest.fixture(autouse=True)
def bridge_token(settings) -> str:
    """The web service's bridge token (make run generates one; empty, no bridge is let in)."""
    settings.FACEACCESS_BRIDGE_TOKEN = "test-bridge-token-" + "x" * 16
    return settings.FACEACCESS_BRIDGE_TOKEN


@pytest.fixture
def bridge_client(settings):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bridge {settings.FACEACCESS_BRIDGE_TOKEN}")
    return client


def make(owner_client, site, **fields):
    return owner_client.post("/api/v1/cameras/", {"site": site.pk, "name": "gate", **fields}, format="json")


def test_credentials_in_the_url_are_kept_apart_and_never_shown(owner_client, site, bridge_client):
    answer = make(owner_client, site, stream_url=f"rtsp://viewer:{SECRET.replace('!', '%21')}@10.0.0.5:554/stream2",
                  stream_fps=4, stream_roi=[0.25, 0.1, 0.75, 1.0])
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["stream_url"] == "rtsp://10.0.0.5:554/stream2" and body["stream_kind"] == "rtsp"
    assert body["stream_has_credentials"] is True and "stream_password" not in body
    camera = Camera.objects.get(pk=body["id"])
    assert (camera.stream_username, camera.stream_password) == ("viewer", SECRET)
    owner_client.patch(f"/api/v1/cameras/{camera.pk}/", {"stream_fps": 2}, format="json")
    for text in (owner_client.get(f"/api/v1/cameras/{camera.pk}/").content.decode(),
                 owner_client.get("/api/v1/cameras/").content.decode(),
                 str(list(LogEntry.objects.values_list("changes", flat=True)))):
        assert SECRET not in text and "viewer" not in text and "S3cret" not in text
    # The bridge alone gets them, and a key that posts as this camera.
    (row,) = bridge_client.get("/api/v1/bridge/cameras/").json()["cameras"]
    assert (row["source"], row["username"], row["password"]) == ("rtsp://10.0.0.5:554/stream2", "viewer", SECRET)
    assert Camera.from_key(row["api_key"]) == camera and row["roi"] == [0.25, 0.1, 0.75, 1.0]


def test_credentials_given_apart_and_an_edit_of_the_url_alone_keeps_them(owner_client, site):
    body = make(owner_client, site, stream_url="http://192.168.1.20/cgi-bin/snapshot.cgi", stream_username="admin",
                stream_password=SECRET).json()
    assert body["stream_kind"] == "snapshot" and body["stream_has_credentials"]
    answer = owner_client.patch(f"/api/v1/cameras/{body['id']}/", {"stream_url": "http://192.168.1.20/mjpg/video.mjpg",
                                                                  "stream_kind": "mjpeg"}, format="json")
    assert answer.status_code == 200 and answer.json()["stream_kind"] == "mjpeg"
    camera = Camera.objects.get(pk=body["id"])
    assert (camera.stream_username, camera.stream_password) == ("admin", SECRET)
    owner_client.patch(f"/api/v1/cameras/{body['id']}/", {"stream_url": ""}, format="json")
    camera.refresh_from_db()
    assert (camera.stream_url, camera.stream_username, camera.stream_password, camera.stream_kind) == ("", "", "", "")


@pytest.mark.parametrize("fields", [
    {"stream_url": "ftp://10.0.0.5/x"},
    {"stream_url": "rtsp://"},
    {"stream_url": "rtsp://10.0.0.5:99999/x"},
    {"stream_url": "rtsp://10.0.0.5/x", "stream_kind": "snapshot"},
    {"stream_url": "/dev/sda"},
    {"stream_url": "rtsp://10.0.0.5/x", "stream_fps": 0},
    {"stream_url": "rtsp://10.0.0.5/x", "stream_roi": [0.5, 0.5, 0.2, 0.9]},
    {"stream_url": "rtsp://10.0.0.5/x", "stream_roi": [0, 0, 1]},
    {"stream_url": "rtsp://10.0.0.5/x", "motion_threshold": -1},
    {"mqtt_unlock_topic": "door/#"},
    {"mqtt_unlock_topic": "$SYS/x"},
])
def test_bad_sources_and_settings_are_refused_and_nothing_is_stored(owner_client, site, fields):
    answer = make(owner_client, site, **fields)
    assert answer.status_code == 400, answer.content
    assert not Camera.objects.filter(name="gate").exists()


def test_a_device_and_its_kind(owner_client, site):
    assert make(owner_client, site, stream_url="/dev/video0").json()["stream_kind"] == "device"


def test_the_bridge_endpoints_need_the_bridge_token(owner_client, site, anon_client, camera):
    from rest_framework.test import APIClient

    for client in (owner_client, anon_client, camera.client()):
        assert client.get("/api/v1/bridge/cameras/").status_code in (401, 403)
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bridge not-the-token")
    assert wrong.get("/api/v1/bridge/cameras/").status_code == 401


def test_bridge_keys_post_only_for_cameras_with_a_stream(settings, site, camera):
    key = keys.bridge_key(settings.FACEACCESS_BRIDGE_TOKEN, camera.camera.pk)
    assert Camera.from_key(key) is None  # no stream: the bridge may not post as it
    camera.camera.stream_url = "rtsp://10.0.0.5/x"
    camera.camera.save()
    assert Camera.from_key(key) == camera.camera
    assert Camera.from_key(keys.bridge_key("another token", camera.camera.pk)) is None
    assert Camera.from_key(key[:-1] + ("0" if key[-1] != "0" else "1")) is None


def test_the_bridges_status_report_is_kept_and_shown(bridge_client, owner_client, camera):
    camera.camera.stream_url = "rtsp://10.0.0.5/x"
    camera.camera.save()
    report = {"cameras": [{"id": camera.camera.pk, "connected": False, "fps": 0, "last_error": "connection refused",
                           "last_frame_at": None, "reconnects": 3, "posted": 7}, {"id": 999999, "connected": True,
                                                                                  "fps": 1}]}
    assert bridge_client.post("/api/v1/bridge/status/", report, format="json").status_code == 200
    shown = owner_client.get(f"/api/v1/cameras/{camera.camera.pk}/").json()["stream_status"]
    assert (shown["connected"], shown["last_error"], shown["reconnects"], shown["posted"]) == (
        False, "connection refused", 3, 7)
    bad = {"cameras": [{"id": camera.camera.pk, "connected": True, "fps": -1}]}
    assert bridge_client.post("/api/v1/bridge/status/", bad, format="json").status_code == 400


def test_without_a_token_no_bridge_is_let_in(settings, camera, bridge_token):
    from rest_framework.test import APIClient

    camera.camera.stream_url = "rtsp://10.0.0.5/x"
    camera.camera.save()
    key = keys.bridge_key(bridge_token, camera.camera.pk)
    settings.FACEACCESS_BRIDGE_TOKEN = ""
    client = APIClient()
    for header in ("Bridge ", f"Bridge {bridge_token}"):
        client.credentials(HTTP_AUTHORIZATION=header)
        assert client.get("/api/v1/bridge/cameras/").status_code == 401
    assert Camera.from_key(key) is None
