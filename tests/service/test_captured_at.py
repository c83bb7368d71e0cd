"""Issue 9, defect 1: a camera's ``captured_at`` outside a sane window is refused with a JSON 400, and no
stored value can break the access log (API list, detail, a camera's own list, the Django admin list)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from access.models import AccessEvent

from .conftest import image_bytes, make_camera

pytestmark = pytest.mark.django_db
SNAPSHOTS = "/api/v1/snapshots/"
EVENTS = "/api/v1/events/"


def post(camera, captured_at: str):
    f = io.BytesIO(image_bytes())
    f.name = "snap.png"
    return camera.client().post(SNAPSHOTS, {"image": f, "captured_at": captured_at}, format="multipart")


def assert_log_readable(owner_client, camera, client) -> None:
    """Every way to read the access log answers 200."""
    listing = owner_client.get(EVENTS)
    assert listing.status_code == 200, listing.content
    for event in listing.json()["results"]:
        assert owner_client.get(f"{EVENTS}{event['id']}/").status_code == 200
    assert camera.client().get(EVENTS).status_code == 200
    admin_list = client.get("/admin/access/accessevent/")
    assert admin_list.status_code == 200


@pytest.fixture
def admin_client_logged_in(client, users):
    client.force_login(users.owner)
    return client


@pytest.mark.parametrize(
    "captured_at",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC: PostgreSQL stores it, Python cannot read it back
        "9999-12-31T23:59:59-14:00",  # after 9999 in UTC: the insert itself used to fail
        "1999-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
        "2999-01-01T00:00:00Z",
    ],
)
def test_captured_at_outside_the_window_is_a_json_400(camera, owner_client, admin_client_logged_in, captured_at):
    ok = post(camera, "2026-01-01T10:00:00Z")
    assert ok.status_code == 202, ok.content
    response = post(camera, captured_at)
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "invalid_captured_at"
    assert "2000-01-01" in response.json()["detail"]
    assert AccessEvent.objects.count() == 1
    assert_log_readable(owner_client, camera, admin_client_logged_in)


def test_a_day_ahead_is_tolerated_more_is_not(camera):
    now = timezone.now()
    skewed = (now + dt.timedelta(hours=23)).isoformat()
    assert post(camera, skewed).status_code == 202
    too_far = (now + dt.timedelta(days=1, minutes=5)).isoformat()
    response = post(camera, too_far)
    assert response.status_code == 400 and response.json()["error"] == "invalid_captured_at"
    assert post(camera, "2000-01-01T00:00:00Z").status_code == 202


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=14))),
        dt.datetime(1999, 12, 31, 23, 59, tzinfo=dt.UTC),
        dt.datetime(2200, 1, 1, tzinfo=dt.UTC),
    ],
)
def test_the_database_refuses_an_unreadable_captured_at_from_any_path(site, value):
    cam = make_camera(site).camera
    with pytest.raises(IntegrityError), transaction.atomic():
        AccessEvent.objects.create(camera=cam, site=site, received_at=timezone.now(), captured_at=value)
    assert AccessEvent.objects.count() == 0


def test_sane_stored_values_keep_every_listing_working(site, camera, owner_client, admin_client_logged_in):
    for value in (None, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), timezone.now()):
        AccessEvent.objects.create(camera=camera.camera, site=site, received_at=timezone.now(), captured_at=value)
    assert_log_readable(owner_client, camera, admin_client_logged_in)
