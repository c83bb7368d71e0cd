"""Liveness in a real browser: the access log with its badges and filter, an event refused as a print, the
site's policy on its edit page, and the live-score histogram on the threshold page; at desktop and phone
width. The events are stored rows (the worker's side is tests/service/test_liveness_*.py)."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from .conftest import log_in, screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _snapshot() -> ContentFile:
    buf = io.BytesIO()
    Image.fromarray(np.full((240, 320, 3), 170, np.uint8)).save(buf, format="JPEG")
    return ContentFile(buf.getvalue(), name="door.jpg")


def _event(site, camera, person, decision: str, live: float | None, code: str = "", minutes: int = 0):
    from access.models import AccessEvent, AccessEventFace

    reason = {"presentation_attack": f"matched {person.name} at 0.610 but presentation attack suspected: "
                                     f"live {live:.3f} < 0.022"}.get(code, f"matched {person.name} at 0.610 <= 0.998")
    event = AccessEvent(camera=camera, site=site, received_at=timezone.now() - dt.timedelta(minutes=minutes),
                        status="done", decision=decision, reason=reason, person=person, threshold=0.998,
                        liveness_policy=site.liveness_policy, liveness_threshold=0.022, liveness=live,
                        reason_code=code, image_width=320, image_height=240, processed_at=timezone.now())
    event.snapshot.save("door.jpg", _snapshot(), save=False)
    event.save()
    AccessEventFace.objects.create(event=event, index=0, box=[100, 60, 200, 180], score=0.99, size_px=100,
                                   nearest_person=person, distance=0.61, decision=decision, reason=reason,
                                   liveness=live)
    return event


def test_liveness_in_the_log_the_event_the_site_and_the_threshold_page(page, live_server, django_user_model):
    from access.models import Camera, Site
    from enrollment.models import Person
    from faceaccess import roles

    site = Site.objects.create(name="HQ", liveness_policy="enforce")
    camera = Camera(site=site, name="front door")
    camera.set_new_key()
    camera.save()
    ada = Person.objects.create(name="Ada Lovelace")
    rng = np.random.default_rng(3)
    for i, live in enumerate(rng.uniform(0.2, 1.0, 14)):
        _event(site, camera, ada, "granted", float(live), minutes=30 + i)
    spoof = _event(site, camera, ada, "denied", 0.004, "presentation_attack", minutes=1)
    _event(site, camera, ada, "denied", 0.0007, "presentation_attack", minutes=2)

    admin = django_user_model.objects.create_user(f"admin-{uuid.uuid4().hex[:6]}", password="pw-browser-1")
    roles.set_role(admin, "admin")
    log_in(page, admin.username, "pw-browser-1")

    page.goto("/events/?liveness=refused")
    rows = page.locator("tr[data-event]")
    assert rows.count() == 2 and "print or screen refused" in rows.first.inner_text()
    screenshot(page, "17-log-liveness-refused")

    page.goto(f"/events/{spoof.pk}/")
    assert "print or screen refused" in page.inner_text("[data-liveness]")
    assert "presentation attack suspected: live 0.004 < 0.022" in page.inner_text("main")
    screenshot(page, "18-event-print-refused")

    page.goto(f"/sites/{site.pk}/edit/")
    assert page.input_value("#id_liveness_policy") == "enforce"
    assert page.input_value("#id_liveness_threshold") == "0.022"

    page.goto(f"/sites/{site.pk}/threshold/")
    page.wait_for_selector("img[data-liveness-plot]")
    assert page.evaluate("document.querySelector('img[data-liveness-plot]').naturalWidth") > 0
    assert "14 let in, 2 taken for a print or a screen" in page.inner_text("[data-liveness-panel]")
    screenshot(page, "19-threshold-liveness")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/events/?liveness=refused")
    assert page.locator("tr[data-event]").count() == 2
    screenshot(page, "20-phone-log-liveness")
