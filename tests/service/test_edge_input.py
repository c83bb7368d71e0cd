"""Issue 17, item 5: edge input that used to end in a 500 answers a clean 4xx (JSON under /api/) or a page."""

from __future__ import annotations

import pytest
from django.test import Client

from access.models import AccessEvent

from .conftest import media_files
from .test_api_errors import assert_json_error, png

pytestmark = pytest.mark.django_db


def test_a_nul_byte_in_the_idempotency_key_is_a_400_and_stores_nothing(camera, media):
    response = camera.client().post("/api/v1/snapshots/", {"image": png(), "idempotency_key": "door\x00-1"},
                                    format="multipart")
    body = assert_json_error(response, 400, "invalid_idempotency_key")
    assert "control" in body["detail"]
    assert AccessEvent.objects.count() == 0 and media_files(media) == []


@pytest.mark.parametrize("query", [
    {"until": "9999-12-31T23:59:59-23:59"},
    {"since": "0001-01-01T00:00:00+23:59"},
    {"since": "2026-05-01T10:00:00+99:00"},
    {"until": "2026-13-45T10:00:00Z"},
    {"since": "2026-05-01T10:00:00+24:00"},
])
def test_out_of_range_date_filters_are_invalid_filter(owner_client, query):
    assert_json_error(owner_client.get("/api/v1/events/", query), 400, "invalid_filter")


def test_a_far_date_within_range_still_filters(owner_client):
    response = owner_client.get("/api/v1/events/", {"until": "9999-12-31T00:00:00+00:00"})
    assert response.status_code == 200, response.content[:500]


@pytest.mark.parametrize("days", ["99999999999", "9" * 5000, "²"])
def test_stranger_days_are_capped(owner_client, days):
    response = owner_client.get("/api/v1/strangers/", {"days": days, "min": "9" * 40})
    assert response.status_code == 200, response.content[:500]
    assert response.json() == []


@pytest.mark.parametrize("url", ["/events/", "/people/"])
@pytest.mark.parametrize("number", ["99999999999999999999", "9" * 5000])
def test_a_page_past_any_end_is_a_404_not_a_500(staff, url, number):
    client = Client(raise_request_exception=False)
    client.force_login(staff.auditor)
    assert client.get(url, {"page": number}).status_code == 404
    assert client.get(url, {"page": "99999"}).status_code == 200  # past the end, yet sane: an empty page
    assert client.get(url, {"page": "²"}).status_code == 200  # junk: the first page
