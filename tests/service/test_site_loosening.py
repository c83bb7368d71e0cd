"""The site form asks first, with a reason, before it loosens a door: a larger threshold, or liveness no longer
enforced; the reason is kept with the audit entry. Other changes save at once."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.forms.models import model_to_dict
from django.test import Client

from access.models import Site

pytestmark = pytest.mark.django_db


def form_of(site: Site, **changes) -> dict:
    data = {k: v for k, v in model_to_dict(site).items() if v is not None and not isinstance(v, (dict, list))}
    return {**data, **changes}


def test_switching_liveness_enforcement_off_asks_why(staff, site):
    Site.objects.filter(pk=site.pk).update(liveness_policy="enforce")
    site.refresh_from_db()
    client = Client()
    client.force_login(staff.admin)
    url = f"/sites/{site.pk}/edit/"
    asked = client.post(url, form_of(site, liveness_policy="off"))
    assert asked.status_code == 200 and "data-confirm-loosening" in asked.content.decode()
    assert Site.objects.get(pk=site.pk).liveness_policy == "enforce"
    assert "Say why" in client.post(url, form_of(site, liveness_policy="off", confirm="1")).content.decode()
    done = client.post(url, form_of(site, liveness_policy="off", confirm="1", reason="camera replaced, re-tuning"))
    assert done.status_code == 302 and Site.objects.get(pk=site.pk).liveness_policy == "off"
    entry = LogEntry.objects.filter(content_type__model="site").latest("id")
    assert entry.additional_data == {"what": "site loosened", "reason": "camera replaced, re-tuning"}


def test_a_larger_threshold_on_the_site_form_asks_too_and_a_smaller_one_does_not(staff, site):
    client = Client()
    client.force_login(staff.admin)
    url = f"/sites/{site.pk}/edit/"
    assert client.post(url, form_of(site, match_threshold="0.95")).status_code == 200
    assert Site.objects.get(pk=site.pk).match_threshold == 0.9
    assert client.post(url, form_of(site, match_threshold="0.85")).status_code == 302
    assert Site.objects.get(pk=site.pk).match_threshold == 0.85
