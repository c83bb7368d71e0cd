"""Issue 9, defect 9: everything under /api/ answers JSON ``{"error": code, "detail": message}``: Django's own
400s (too many fields, too many files, too much form data), failed logins on the token endpoint, unknown
URLs, and 500s (with an id that finds the traceback in the server log, and no traceback in the answer)."""

from __future__ import annotations

import io
import json
import logging

import pytest
from rest_framework.test import APIClient

from access.models import AccessEvent

from .conftest import image_bytes, media_files

pytestmark = pytest.mark.django_db
SNAPSHOTS = "/api/v1/snapshots/"


def assert_json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json"), response.content[:500]
    body = json.loads(response.content)
    assert body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"], body
    return body


def png(name: str = "snap.png") -> io.BytesIO:
    f = io.BytesIO(image_bytes())
    f.name = name
    return f


def test_too_many_files(camera, media):
    response = camera.client().post(SNAPSHOTS, {"image": [png() for _ in range(101)]}, format="multipart")
    body = assert_json_error(response, 400, "too_many_files")
    assert "100" in body["detail"]
    assert AccessEvent.objects.count() == 0 and media_files(media) == []


def test_too_many_fields(camera, media):
    fields = {f"f{i}": "x" for i in range(1001)}
    response = camera.client().post(SNAPSHOTS, {"image": png(), **fields}, format="multipart")
    body = assert_json_error(response, 400, "too_many_fields")
    assert "1000" in body["detail"] or "1,000" in body["detail"]
    assert AccessEvent.objects.count() == 0


def test_too_many_urlencoded_fields(users):
    body = "&".join(f"f{i}=x" for i in range(1001))
    response = APIClient().post("/api/v1/auth/token/", body, content_type="application/x-www-form-urlencoded")
    assert_json_error(response, 400, "too_many_fields")


def test_too_much_form_data(camera, media, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = camera.client().post(SNAPSHOTS, {"image": png(), "captured_at": "x" * 20_000}, format="multipart")
    assert_json_error(response, 413, "request_too_large")
    assert AccessEvent.objects.count() == 0


def test_a_failed_login_on_the_token_endpoint(users):
    response = APIClient().post("/api/v1/auth/token/", {"username": "owner", "password": "wrong"})
    body = assert_json_error(response, 400, "invalid")
    assert "credentials" in body["detail"]
    assert "non_field_errors" not in body


def test_a_token_request_without_fields(users):
    body = assert_json_error(APIClient().post("/api/v1/auth/token/", {}), 400, "invalid")
    assert body["detail"].startswith("username:")


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing/", "/api/nope", "/api/v1/events/999999/"])
def test_unknown_urls(owner_client, path):
    assert_json_error(owner_client.get(path), 404, "not_found")


def test_a_browser_asking_for_html_still_gets_json(anon_client):
    response = anon_client.get("/api/v1/events/", HTTP_ACCEPT="text/html")
    assert_json_error(response, 401, "not_authenticated")


def test_a_500_is_json_with_an_id_to_find_it_in_the_log(owner_client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals: /srv/faceaccess/db password=hunter2")

    monkeypatch.setattr("access.api.events.filter_events", broken)
    client = APIClient(raise_request_exception=False)
    client.credentials(**owner_client._credentials)
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/v1/events/")
    body = assert_json_error(response, 500, "server_error")
    error_id = body["error_id"]
    assert error_id and error_id in body["detail"]
    assert "hunter2" not in response.content.decode() and "Traceback" not in response.content.decode()
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged and logged[0].exc_info and "hunter2" in str(logged[0].exc_info[1])


def test_pages_outside_the_api_keep_their_html(client):
    response = client.get("/admin/no-such-page/")
    assert not response["Content-Type"].startswith("application/json")


def test_an_html_500_made_outside_a_view_becomes_json(rf, caplog):
    from django.http import HttpResponseServerError

    from faceaccess.api.middleware import ApiErrorsMiddleware

    page = HttpResponseServerError("<h1>Server Error (500)</h1>")
    page["Retry-After"] = "5"
    with caplog.at_level(logging.ERROR):
        response = ApiErrorsMiddleware(lambda request: page)(rf.get("/api/v1/sites/"))
    body = assert_json_error(response, 500, "server_error")
    assert response["Retry-After"] == "5"
    assert any(body["error_id"] in r.getMessage() for r in caplog.records)
    assert ApiErrorsMiddleware(lambda request: page)(rf.get("/admin/")) is page
