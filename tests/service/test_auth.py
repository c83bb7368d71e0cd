"""Who may call what: staff by token or session, cameras by API key, nobody else."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from access.models import AccessEvent

from .conftest import make_camera, make_person, token_client

pytestmark = pytest.mark.django_db

ADMIN_LISTS = ["/api/v1/people/", "/api/v1/faces/", "/api/v1/sites/", "/api/v1/cameras/", "/api/v1/events/"]


@pytest.mark.parametrize("url", ADMIN_LISTS)
def test_owner_and_teammate_may_list(users, site, url):
    for user in (users.owner, users.teammate):
        assert token_client(user).get(url).status_code == 200


@pytest.mark.parametrize("url", ADMIN_LISTS)
def test_outsider_is_forbidden(users, url):
    response = token_client(users.outsider).get(url)
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"


@pytest.mark.parametrize("url", ADMIN_LISTS)
def test_anonymous_must_authenticate(anon_client, url):
    response = anon_client.get(url)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_bad_token(anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION="Token nope")
    response = anon_client.get("/api/v1/people/")
    assert (response.status_code, response.json()["error"]) == (401, "authentication_failed")


def test_outsider_cannot_create_or_delete(users, site):
    client = token_client(users.outsider)
    assert client.post("/api/v1/people/", {"name": "Mallory"}, format="json").status_code == 403
    assert client.delete(f"/api/v1/sites/{site.pk}/").status_code == 403
    assert client.patch(f"/api/v1/sites/{site.pk}/", {"match_threshold": 2.0}, format="json").status_code == 403


def test_session_login_works_for_staff(users, site):
    client = APIClient()
    assert client.login(username="teammate", password="pw-teammate")
    assert client.get("/api/v1/sites/").status_code == 200
    client.logout()
    assert client.login(username="outsider", password="pw-outsider")
    assert client.get("/api/v1/sites/").status_code == 403


def test_token_endpoint(users):
    response = APIClient().post("/api/v1/auth/token/", {"username": "owner", "password": "pw-owner"})
    assert response.status_code == 200
    assert token_client(None).get("/api/v1/people/").status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get("/api/v1/people/").status_code == 200


def test_a_camera_key_opens_no_admin_endpoint(camera):
    client = camera.client()
    for url in ["/api/v1/people/", "/api/v1/sites/", "/api/v1/cameras/", "/api/v1/faces/"]:
        assert client.get(url).status_code == 401, url


def test_a_camera_sees_only_its_own_events(site, camera):
    other = make_camera(site, "back door")
    mine = AccessEvent.objects.create(camera=camera.camera, site=site, received_at="2026-01-01T00:00:00Z")
    theirs = AccessEvent.objects.create(camera=other.camera, site=site, received_at="2026-01-01T00:00:00Z")
    client = camera.client()
    assert [e["id"] for e in client.get("/api/v1/events/").json()["results"]] == [mine.pk]
    assert client.get(f"/api/v1/events/{mine.pk}/").status_code == 200
    assert client.get(f"/api/v1/events/{theirs.pk}/").status_code == 404
    assert client.get(f"/api/v1/events/{mine.pk}/snapshot/").status_code == 401  # staff only


def test_an_inactive_camera_cannot_read_events(site):
    cam = make_camera(site, "old", active=False)
    response = cam.client().get("/api/v1/events/")
    assert (response.status_code, response.json()["error"]) == (403, "camera_inactive")


def test_a_staff_token_cannot_post_snapshots(owner_client):
    response = owner_client.post("/api/v1/snapshots/", {}, format="multipart")
    assert (response.status_code, response.json()["error"]) == (401, "missing_api_key")


def test_api_keys_are_stored_hashed(camera):
    camera.camera.refresh_from_db()
    assert camera.key not in (camera.camera.key_hash, camera.camera.key_prefix)
    assert len(camera.camera.key_hash) == 64 and camera.camera.check_key(camera.key)


def test_people_endpoint_needs_staff_even_for_reading_one(users):
    person = make_person("Alice")
    assert token_client(users.outsider).get(f"/api/v1/people/{person.pk}/").status_code == 403


def test_api_tokens_are_stored_hashed_and_expire(users, anon_client):
    from knox.models import AuthToken

    response = anon_client.post("/api/v1/auth/token/", {"username": "owner", "password": "pw-owner"})
    assert response.status_code == 200 and response.json()["expiry"]
    token = response.json()["token"]
    stored = AuthToken.objects.get(user=users.owner)
    assert token not in (stored.digest, stored.token_key) and len(stored.digest) == 128  # sha512 hex
    client = token_client(None)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/sites/").status_code == 200
    AuthToken.objects.filter(pk=stored.pk).update(expiry="2000-01-01T00:00:00Z")
    assert client.get("/api/v1/sites/").status_code == 401


def test_create_token_command_prints_a_working_token(users):
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("create_token", "teammate", "--hours", "1", stdout=out)
    client = token_client(None)
    client.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip()}")
    assert client.get("/api/v1/people/").status_code == 200
