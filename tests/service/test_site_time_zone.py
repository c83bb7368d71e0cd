"""A site's time zone is chosen from a list of IANA zones (no free text to mistype); a bad value posted anyway
is a form error."""

from __future__ import annotations

import pytest
from django.forms.models import model_to_dict
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_time_zone_is_a_choice_list(staff, site):
    client = Client()
    client.force_login(staff.admin)
    html = client.get(f"/sites/{site.pk}/edit/").content.decode()
    assert '<select name="timezone"' in html and '<option value="Europe/Paris">Europe/Paris</option>' in html
    assert '<option value="UTC" selected>' in html
    form = {k: v for k, v in model_to_dict(site).items() if v is not None and not isinstance(v, (dict, list))}
    bad = client.post(f"/sites/{site.pk}/edit/", {**form, "timezone": "Mars/Olympus"})
    assert bad.status_code == 200 and "Mars/Olympus" not in site.__class__.objects.get().timezone
    good = client.post(f"/sites/{site.pk}/edit/", {**form, "timezone": "America/New_York"})
    assert good.status_code == 302 and site.__class__.objects.get().timezone == "America/New_York"
