"""Issue 17, item 5: text cells in the access-log CSV that a spreadsheet would run as a formula (``=``, ``+``,
``-``, ``@``, tab, carriage return) come out with a leading ``'`` (OWASP's CSV-injection advice)."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from access.models import AccessEvent, Site

from .conftest import make_camera, make_person

pytestmark = pytest.mark.django_db


def exported(user) -> list[list[str]]:
    client = Client()
    client.force_login(user)
    response = client.get("/events.csv")
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_formula_cells_are_neutralised(staff):
    site = Site.objects.create(name="@SUM(1+1)", match_threshold=0.9, min_face_px=40, min_detection_score=0.9)
    camera = make_camera(site, name="=cmd|' /C calc'!A0")
    person = make_person('=HYPERLINK("http://x")', sites=[site])
    AccessEvent.objects.create(camera=camera.camera, site=site, received_at="2026-05-01T10:00:00Z",
                               status="done", decision="granted", person=person, reason="+1 tab\tinside")
    AccessEvent.objects.create(camera=camera.camera, site=site, received_at="2026-05-01T10:01:00Z",
                               status="done", decision="unknown", reason="-2")
    header, *rows = exported(staff.auditor)
    by_decision = {row[header.index("decision")]: dict(zip(header, row, strict=True)) for row in rows}
    granted = by_decision["granted"]
    assert granted["person"] == '\'=HYPERLINK("http://x")'
    assert granted["camera"] == "'=cmd|' /C calc'!A0"
    assert granted["site"] == "'@SUM(1+1)"
    assert granted["reason"].startswith("'+1")
    assert by_decision["unknown"]["reason"].startswith("'-2")
    assert by_decision["unknown"]["person"] == ""


def test_tab_and_carriage_return_starts_are_neutralised(staff, site):
    camera = make_camera(site, name="\tcam")
    person = make_person("\rBob", sites=[site])
    AccessEvent.objects.create(camera=camera.camera, site=site, received_at="2026-05-01T10:00:00Z",
                               status="done", decision="granted", person=person, reason="ok")
    header, row = exported(staff.auditor)
    cells = dict(zip(header, row, strict=True))
    assert cells["camera"] == "'\tcam" and cells["person"] == "'\rBob" and cells["site"] == "HQ"
