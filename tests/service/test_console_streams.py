"""The console's camera form for streams: a URL typed with credentials is stored without them, the password is
never sent back (an empty field keeps it), bad input is refused with nothing stored; a stream's live status (or
the bridge's silence) shows on the dashboard and the sites page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from access.models import Camera, StreamStatus

pytestmark = pytest.mark.django_db
PASSWORD = "Sup3r-S3cret"


def admin(staff) -> Client:
    client = Client()
    client.force_login(staff.admin)
    return client


def form(**fields) -> dict:
    return {"name": "gate", "active": "on", "debounce_seconds": "10", "stream_fps": "5", "motion_threshold": "1",
            "grant_cooldown_seconds": "10", "mqtt_unlock_payload": "ON", "mqtt_lock_payload": "OFF",
            "mqtt_pulse_seconds": "1", **fields}


def test_a_url_with_credentials_is_stored_apart_and_the_password_never_shown(staff, site):
    client = admin(staff)
    answer = client.post(f"/sites/{site.pk}/cameras/new/", form(
        stream_url=f"rtsp://admin:{PASSWORD}@192.168.1.20:554/cam/realmonitor?channel=1&subtype=1"))
    assert answer.status_code == 200 and b"fa_" in answer.content  # the key page
    camera = Camera.objects.get(name="gate")
    assert camera.stream_url == "rtsp://192.168.1.20:554/cam/realmonitor?channel=1&subtype=1"
    assert (camera.stream_kind, camera.stream_username, camera.stream_password) == ("rtsp", "admin", PASSWORD)
    page = client.get(f"/cameras/{camera.pk}/edit/").content.decode()
    assert PASSWORD not in page and "rtsp://192.168.1.20:554/cam/realmonitor" in page
    # Saving the form again with the password field empty keeps the stored password.
    client.post(f"/cameras/{camera.pk}/edit/", form(stream_url=camera.stream_url, stream_username="admin",
                                                    stream_fps="3"))
    camera.refresh_from_db()
    assert (camera.stream_fps, camera.stream_password) == (3.0, PASSWORD)


@pytest.mark.parametrize("fields", [{"stream_url": "ftp://x/y"}, {"stream_url": "rtsp://10.0.0.1/a",
                                                                   "stream_kind": "mjpeg"},
                                    {"stream_roi": "[0.9, 0, 0.1, 1]", "stream_url": "rtsp://10.0.0.1/a"},
                                    {"mqtt_unlock_topic": "door/+/set"}])
def test_bad_input_is_refused_and_nothing_stored(staff, site, fields):
    answer = admin(staff).post(f"/sites/{site.pk}/cameras/new/", form(**fields))
    assert answer.status_code == 200 and b"errorlist" in answer.content
    assert not Camera.objects.filter(name="gate").exists()


def test_the_dashboard_shows_a_dead_stream_and_a_silent_bridge(staff, camera):
    camera.camera.stream_url = "rtsp://10.0.0.1/a"
    camera.camera.save()
    client = admin(staff)
    assert 'data-stream-status="silent"' in client.get("/").content.decode()  # no report yet: never silent
    StreamStatus.objects.create(camera=camera.camera, connected=False, last_error="connection refused",
                                reported_at=timezone.now())
    page = client.get("/dashboard/live/").content.decode()
    assert 'data-stream-status="down"' in page and "connection refused" in page
    StreamStatus.objects.filter(camera=camera.camera).update(connected=True, fps=4.8, reported_at=timezone.now())
    assert 'data-stream-status="connected"' in client.get("/sites/").content.decode()
    StreamStatus.objects.filter(camera=camera.camera).update(reported_at=timezone.now() - dt.timedelta(minutes=5))
    assert 'data-stream-status="silent"' in client.get("/dashboard/live/").content.decode()


def test_the_django_admin_does_not_show_the_streams_credentials(users, camera):
    camera.camera.stream_url, camera.camera.stream_username = "rtsp://10.0.0.1/a", "viewer-name"
    camera.camera.stream_password = PASSWORD
    camera.camera.save()
    client = Client()
    client.force_login(users.owner)
    page = client.get(f"/admin/access/camera/{camera.camera.pk}/change/")
    assert page.status_code == 200 and "rtsp://10.0.0.1/a" in page.content.decode()
    assert PASSWORD not in page.content.decode() and "viewer-name" not in page.content.decode()
