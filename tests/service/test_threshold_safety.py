"""Safe threshold tuning: no suggestion without enough people (the page says how many); loosening asks for
confirmation with the what-if summary and a reason, which the history keeps; one click reverts; tightening
saves at once."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.test import Client

from recognition.pipelines import current_embedder_name

from .conftest import enroll_vector, make_person, unit

pytestmark = pytest.mark.django_db


def admin_client(staff) -> Client:
    client = Client()
    client.force_login(staff.admin)
    return client


def test_a_small_site_gets_no_suggestion_but_how_many_people_it_needs(staff, site):
    for i in range(5):
        person = make_person(f"P{i}", sites=[site])
        enroll_vector(person, unit(i), model=(current_embedder_name(), "1"))
        enroll_vector(person, unit(i + 100), model=(current_embedder_name(), "1"))
    html = admin_client(staff).get(f"/sites/{site.pk}/threshold/", {"far": "0.01"}).content.decode()
    assert "data-no-suggestion" in html and "<strong>300</strong>" in html and "data-suggested" not in html


def test_loosening_asks_why_and_the_history_keeps_it_and_one_click_reverts(staff, site):
    client = admin_client(staff)
    url = f"/sites/{site.pk}/threshold/"
    asked = client.post(url, {"threshold": "0.95"})
    assert asked.status_code == 200 and "data-confirm-loosening" in asked.content.decode()
    assert "data-whatif-summary" in asked.content.decode()
    site.refresh_from_db()
    assert site.match_threshold == 0.9  # nothing saved before the confirmation
    no_reason = client.post(url, {"threshold": "0.95", "confirm": "1", "reason": "  "})
    assert "Say why" in no_reason.content.decode()
    site.refresh_from_db()
    assert site.match_threshold == 0.9
    done = client.post(url, {"threshold": "0.95", "confirm": "1", "reason": "staff in glasses refused at dawn"})
    site.refresh_from_db()
    assert done.status_code == 302 and site.match_threshold == 0.95
    page = client.get(url).content.decode()
    assert "staff in glasses refused at dawn" in page and "threshold loosened" in page and "data-revert" in page
    entry = LogEntry.objects.filter(content_type__model="site").latest("id")
    assert entry.additional_data == {"what": "threshold loosened", "reason": "staff in glasses refused at dawn"}

    client.post(url, {"threshold": "0.9", "revert": "1"})
    site.refresh_from_db()
    assert site.match_threshold == 0.9
    assert LogEntry.objects.filter(content_type__model="site").latest("id").additional_data["what"] == \
        "threshold reverted"


def test_tightening_saves_at_once_and_auditors_cannot_revert(staff, site):
    client = admin_client(staff)
    response = client.post(f"/sites/{site.pk}/threshold/", {"threshold": "0.8"})
    site.refresh_from_db()
    assert response.status_code == 302 and site.match_threshold == 0.8
    auditor = Client()
    auditor.force_login(staff.auditor)
    html = auditor.get(f"/sites/{site.pk}/threshold/").content.decode()
    assert "data-revert" not in html
    assert auditor.post(f"/sites/{site.pk}/threshold/", {"threshold": "0.9", "revert": "1"}).status_code == 403
