"""A second camera of the same name on a site (or reloading the page that showed a new camera's key, which
posts the form again) is a form error on the page, not a bare 500; nothing is stored twice."""

from __future__ import annotations

import pytest
from django.test import Client

from access.models import Camera

pytestmark = pytest.mark.django_db


def test_a_duplicate_camera_name_is_a_form_error(staff, site):
    client = Client()
    client.force_login(staff.admin)
    first = client.post(f"/sites/{site.pk}/cameras/new/", {"name": "lobby", "active": "on"})
    assert first.status_code == 200 and "data-api-key" in first.content.decode()
    again = client.post(f"/sites/{site.pk}/cameras/new/", {"name": "lobby", "active": "on"})
    html = again.content.decode()
    assert again.status_code == 200 and "already has a camera named" in html and "data-api-key" not in html
    other = Camera.objects.create(site=site, name="yard", key_prefix="abcd1234", key_hash="x")
    renamed = client.post(f"/cameras/{other.pk}/edit/", {"name": "LOBBY", "active": "on"})
    assert renamed.status_code == 200 and "already has a camera named" in renamed.content.decode()
    assert Camera.objects.filter(site=site).count() == 2
