"""The access log's distance column and its CSV show the deciding face's distance, never that of a face the
site ignored (too small or a low detection score) even when that one is nearer."""

from __future__ import annotations

import pytest
from django.test import Client

from access.models import AccessEvent, AccessEventFace

from .conftest import make_person

pytestmark = pytest.mark.django_db


def test_the_log_and_the_csv_use_the_deciding_face(staff, site, camera):
    ada = make_person("Ada", sites=[site])
    event = AccessEvent.objects.create(camera=camera.camera, site=site, received_at="2026-05-01T10:00:00Z",
                                       status="done", decision="granted", person=ada, threshold=0.9)
    AccessEventFace.objects.create(event=event, index=0, decision="ignored", box=[0, 0, 9, 9], nearest_person=ada,
                                   distance=0.2)
    AccessEventFace.objects.create(event=event, index=1, decision="granted", box=[20, 20, 120, 120],
                                   nearest_person=ada, distance=0.61)
    AccessEventFace.objects.create(event=event, index=2, decision="unknown", box=[200, 20, 300, 120], distance=0.5)
    assert event.deciding_face.index == 1
    client = Client()
    client.force_login(staff.auditor)
    page = client.get("/events/").content.decode()
    assert "0.610 / 0.900" in page and "0.200" not in page
    csv_text = b"".join(client.get("/events.csv").streaming_content).decode()
    assert ",0.6100," in csv_text and "0.2000" not in csv_text
