"""The Activity page: the audit trail for admins and auditors, filtered by who, what and when; auditors also
read the Models page (no switch buttons). Operators see neither."""

from __future__ import annotations

import pytest
from django.test import Client

from .conftest import make_person

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rows(html: str) -> int:
    return html.count("data-entry=")


def test_activity_filters_by_who_what_and_when(staff, site):
    operator, admin = logged_in(staff.operator), logged_in(staff.admin)
    operator.post("/people/new/", {"name": "Ada", "active": "on"})
    admin.post(f"/sites/{site.pk}/threshold/", {"threshold": "0.8"})
    auditor = logged_in(staff.auditor)
    everything = auditor.get("/activity/").content.decode()
    assert rows(everything) >= 2 and "operator-user" in everything and "admin-user" in everything
    by_operator = auditor.get("/activity/", {"who": "operator-user"}).content.decode()
    assert rows(by_operator) >= 1 and "admin-user</td>" not in by_operator and "Ada" in by_operator
    sites_only = auditor.get("/activity/", {"what": "site"}).content.decode()
    assert "Ada" not in sites_only and "match_threshold" in sites_only and "0.8" in sites_only
    assert rows(auditor.get("/activity/", {"since": "2001-01-01", "until": "2001-01-02"}).content.decode()) == 0
    assert auditor.get("/activity/", {"since": "not-a-date", "page": "x"}).status_code == 200
    assert logged_in(staff.operator).get("/activity/").status_code == 403


def test_erasures_and_rotations_are_listed_by_what_happened(staff, site, camera):
    make_person("Zed", sites=[site])
    admin = logged_in(staff.admin)
    admin.post(f"/cameras/{camera.camera.pk}/rotate-secret/")
    html = admin.get("/activity/", {"action": "webhook secret rotated"}).content.decode()
    assert rows(html) == 1 and camera.camera.webhook_secret not in html


def test_auditors_read_the_models_page_without_its_actions(staff):
    html = logged_in(staff.auditor).get("/models/").content.decode()
    assert "Site thresholds" in html and "data-read-only" in html and 'name="action"' not in html
    assert 'name="action"' in logged_in(staff.admin).get("/models/").content.decode()
    assert logged_in(staff.auditor).post("/models/act/", {"action": "cancel"}).status_code == 403
    assert logged_in(staff.operator).get("/models/").status_code == 403
    menu = logged_in(staff.auditor).get("/").content.decode()
    assert 'href="/activity/"' in menu and 'href="/models/"' in menu
