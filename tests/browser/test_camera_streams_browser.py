"""A camera's stream in a real browser: an admin adds a camera with an RTSP URL typed with its credentials, the
form never shows the password back, and the dashboard and the sites page show the stream's live status (down with
its error, then connected) as the bridge reports it. Screenshots at desktop and phone widths (cameras-*.png)."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from .conftest import log_in, screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
PASSWORD = "Cam-Pa55word!"


def test_an_admin_connects_a_camera_and_sees_its_stream(page, live_server, django_user_model):
    from access.models import Camera, Site, StreamStatus
    from faceaccess import roles

    site = Site.objects.create(name="HQ", match_threshold=0.9)
    admin = django_user_model.objects.create_user(f"admin-{uuid.uuid4().hex[:6]}", password="pw-browser-1")
    roles.set_role(admin, "admin")
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, admin.username, "pw-browser-1")
    page.goto(f"/sites/{site.pk}/cameras/new/")
    page.fill("#id_name", "Front door")
    page.fill("#id_stream_url", f"rtsp://admin:{PASSWORD}@192.168.1.64:554/Streaming/Channels/102")
    page.fill("#id_stream_roi", "[0.25, 0.0, 0.75, 1.0]")
    page.fill("#id_mqtt_unlock_topic", "cmnd/front-door/POWER")
    screenshot(page, "cameras-01-new-camera-form")
    page.click("button:has-text('Create and show the key')")
    page.wait_for_selector("text=Front door")
    camera = Camera.objects.get(name="Front door")
    assert (camera.stream_url, camera.stream_password) == ("rtsp://192.168.1.64:554/Streaming/Channels/102",
                                                           PASSWORD)
    page.goto(f"/cameras/{camera.pk}/edit/")
    assert page.input_value("#id_stream_url") == "rtsp://192.168.1.64:554/Streaming/Channels/102"
    assert page.input_value("#id_stream_password") == "" and PASSWORD not in page.content()
    page.wait_for_selector('[data-stream-status="silent"]')  # no report yet: said, not hidden
    screenshot(page, "cameras-02-edit-no-report")

    StreamStatus.objects.create(camera=camera, connected=False, last_error="connection refused", reconnects=2,
                                reported_at=timezone.now())
    page.goto("/")
    page.wait_for_selector('[data-stream-status="down"]')
    assert "connection refused" in page.inner_text('[data-stream-status="down"]')
    screenshot(page, "cameras-03-dashboard-stream-down")
    StreamStatus.objects.filter(camera=camera).update(connected=True, fps=5.0, last_error="",
                                                      last_frame_at=timezone.now(), reported_at=timezone.now())
    page.wait_for_selector('[data-stream-status="connected"]', timeout=10_000)  # the dashboard's live refresh
    screenshot(page, "cameras-04-dashboard-stream-connected")
    page.goto("/sites/")
    assert "5.0 frames/s" in page.inner_text('[data-stream-status="connected"]')
    screenshot(page, "cameras-05-sites")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    page.wait_for_selector('[data-stream-status="connected"]')
    screenshot(page, "cameras-06-dashboard-phone")
    page.goto(f"/cameras/{camera.pk}/edit/")
    screenshot(page, "cameras-07-edit-phone")
