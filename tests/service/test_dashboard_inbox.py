"""The dashboard's "needs attention" inbox lists what people should do, with counts and links; an empty
system shows the first steps instead; the access log filters reviewed / not reviewed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from access.models import AccessEvent, Camera, EventReview
from enrollment.models import FaceImage

from .conftest import make_person

pytestmark = pytest.mark.django_db


def dashboard(user) -> str:
    client = Client()
    client.force_login(user)
    return client.get("/").content.decode()


def test_an_empty_system_shows_the_first_steps(staff):
    html = dashboard(staff.admin)
    assert "data-first-steps" in html and "Create a site" in html and "data-attention" not in html


def test_the_inbox_lists_each_kind_and_the_log_filters_unreviewed(staff, site, camera):
    ada = make_person("Ada", sites=[site])
    FaceImage.objects.create(person=ada, image="faces/a.jpg", status="several_faces")
    now = timezone.now()
    denied = [AccessEvent.objects.create(camera=camera.camera, site=site, received_at=now, status="done",
                                         decision="denied", person=ada) for _ in range(2)]
    AccessEvent.objects.create(camera=camera.camera, site=site, received_at=now - dt.timedelta(days=30),
                               status="done", decision="denied")  # too old for the inbox
    Camera.objects.filter(pk=camera.camera.pk).update(created_at=now - dt.timedelta(days=3), last_seen_at=None)
    site.threshold_note = "re-tune: the model changed"
    site.save()
    html = dashboard(staff.operator)
    for kind in ("face_pick", "no_photo", "review_denied", "dead_camera", "threshold_note"):
        assert f'data-kind="{kind}"' in html, kind
    assert "2 denied door events" in html and "data-first-steps" not in html

    EventReview.objects.create(event=denied[0], verdict="confirmed", reviewer=staff.operator)
    assert "1 denied door event of" in dashboard(staff.operator)
    client = Client()
    client.force_login(staff.operator)
    log = client.get("/events/", {"decision": "denied", "reviewed": "no"}).content.decode()
    assert log.count("data-event=") == 2  # the unreviewed recent one and the old one
    assert client.get("/events/", {"reviewed": "yes"}).content.decode().count("data-event=") == 1
