"""Through the API as on the console: a change that loosens a door (a larger threshold, liveness no longer
enforced) needs a reason, kept in the audit trail; tightening needs none."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from rest_framework.test import APIClient

from access.models import Site

pytestmark = pytest.mark.django_db


def test_loosening_through_the_api_needs_a_reason(staff, site):
    api = APIClient()
    api.force_authenticate(staff.admin)
    url = f"/api/v1/sites/{site.pk}/"
    refused = api.patch(url, {"match_threshold": 0.95}, format="json")
    assert refused.status_code == 400 and "reason" in refused.json()["fields"]
    assert Site.objects.get(pk=site.pk).match_threshold == 0.9
    assert api.patch(url, {"match_threshold": 0.8}, format="json").status_code == 200
    done = api.patch(url, {"match_threshold": 0.95, "reason": "new camera, wider angle"}, format="json")
    assert done.status_code == 200 and "reason" not in done.json()
    entry = LogEntry.objects.filter(content_type__model="site").latest("id")
    assert entry.additional_data["reason"] == "new camera, wider angle"
    Site.objects.filter(pk=site.pk).update(liveness_policy="enforce")
    assert api.patch(url, {"liveness_policy": "off"}, format="json").status_code == 400
    assert api.patch(url, {"liveness_policy": "off", "reason": "camera replaced"}, format="json").status_code == 200
