"""People, sites and cameras CRUD; the event log's filters; the OpenAPI schema."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from access.models import AccessEvent, Camera, Site
from enrollment.models import Person

from .conftest import make_camera, make_person

pytestmark = pytest.mark.django_db


def test_people_crud(owner_client, site):
    created = owner_client.post(
        "/api/v1/people/",
        {"name": "Alice", "external_id": "E-1", "sites": [site.pk], "valid_until": "2030-01-01T00:00:00Z"},
        format="json",
    )
    assert created.status_code == 201, created.content
    pid = created.json()["id"]
    assert created.json()["faces_url"].endswith(f"/api/v1/people/{pid}/faces/")
    assert owner_client.patch(f"/api/v1/people/{pid}/", {"active": False}, format="json").json()["active"] is False
    assert [p["name"] for p in owner_client.get("/api/v1/people/?active=false").json()["results"]] == ["Alice"]
    assert owner_client.get(f"/api/v1/people/?site={site.pk}").json()["count"] == 1
    assert owner_client.get("/api/v1/people/?search=e-1").json()["count"] == 1
    duplicate = owner_client.post("/api/v1/people/", {"name": "Al", "external_id": "E-1"}, format="json")
    assert duplicate.status_code == 400 and duplicate.json()["error"] == "invalid"
    assert owner_client.delete(f"/api/v1/people/{pid}/").status_code == 204
    assert not Person.objects.exists()


def test_validity_must_be_ordered(owner_client):
    response = owner_client.post(
        "/api/v1/people/",
        {"name": "Bob", "valid_from": "2030-01-01T00:00:00Z", "valid_until": "2029-01-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["fields"]["valid_until"]


def test_site_crud_and_threshold_patch(owner_client):
    site = owner_client.post(
        "/api/v1/sites/", {"name": "Lab", "timezone": "Europe/Paris", "match_threshold": 1.0}, format="json"
    ).json()
    url = f"/api/v1/sites/{site['id']}/"
    assert owner_client.patch(url, {"match_threshold": 0.8}, format="json").json()["match_threshold"] == 0.8
    for bad in (0, -1, 2.5):
        response = owner_client.patch(url, {"match_threshold": bad}, format="json")
        assert response.status_code == 400 and "match_threshold" in response.json()["fields"], bad
    bad_tz = owner_client.patch(url, {"timezone": "Mars/Olympus"}, format="json")
    assert bad_tz.status_code == 400 and "timezone" in bad_tz.json()["fields"]
    assert Site.objects.get().match_threshold == 0.8
    assert owner_client.delete(url).status_code == 204


def test_a_new_site_starts_from_the_default_embedders_threshold(owner_client, monkeypatch):
    from recognition.engine import registry

    name = registry.default_embedder_name()
    monkeypatch.setitem(registry.MODELS, name, dataclasses.replace(registry.get_spec(name), default_threshold=0.77))
    response = owner_client.post("/api/v1/sites/", {"name": "Annex"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["match_threshold"] == 0.77  # read when the site is created, not at import


def test_camera_key_is_shown_once(owner_client, site):
    alice = make_person("Alice", sites=[site])
    created = owner_client.post(
        "/api/v1/cameras/", {"site": site.pk, "name": "Gate", "allowed_people": [alice.pk]}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    key, cid = body["api_key"], body["id"]
    assert key.startswith(f"fa_{body['key_prefix']}_") and body["allowed_people"] == [alice.pk]
    shown = owner_client.get(f"/api/v1/cameras/{cid}/").json()
    assert "api_key" not in shown and key not in str(owner_client.get("/api/v1/cameras/").json())
    assert Camera.from_key(key).pk == cid

    rotated = owner_client.post(f"/api/v1/cameras/{cid}/rotate-key/").json()["api_key"]
    assert rotated != key and Camera.from_key(key) is None and Camera.from_key(rotated).pk == cid

    assert owner_client.patch(f"/api/v1/cameras/{cid}/", {"active": False}, format="json").json()["active"] is False
    assert owner_client.get(f"/api/v1/cameras/?site={site.pk}").json()["count"] == 1
    assert owner_client.delete(f"/api/v1/cameras/{cid}/").status_code == 204


def test_camera_names_are_unique_per_site(owner_client, site):
    make_camera(site, "Gate")
    response = owner_client.post("/api/v1/cameras/", {"site": site.pk, "name": "Gate"}, format="json")
    assert response.status_code == 400


def test_event_filters(owner_client, site, camera):
    alice = make_person("Alice", sites=[site])
    other_site = Site.objects.create(name="Annex", match_threshold=0.9)
    other_cam = make_camera(other_site, "side")
    t0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)

    def event(cam, minutes, decision, person=None):
        return AccessEvent.objects.create(
            camera=cam.camera, site=cam.camera.site, received_at=t0 + dt.timedelta(minutes=minutes),
            status="done", decision=decision, person=person,
        )

    e1 = event(camera, 0, "granted", alice)
    e2 = event(camera, 10, "unknown")
    e3 = event(other_cam, 20, "no_face")

    def ids(query: str) -> list[int]:
        response = owner_client.get("/api/v1/events/" + query)
        assert response.status_code == 200, response.content
        return [e["id"] for e in response.json()["results"]]

    assert ids("") == [e3.pk, e2.pk, e1.pk]  # newest first
    assert ids(f"?camera={camera.camera.pk}") == [e2.pk, e1.pk]
    assert ids(f"?site={other_site.pk}") == [e3.pk]
    assert ids("?decision=granted") == [e1.pk]
    assert ids(f"?person={alice.pk}") == [e1.pk]
    assert ids("?since=2026-03-01T08:05:00Z&until=2026-03-01T08:20:00Z") == [e2.pk]
    assert ids("?page_size=1") == [e3.pk]
    for bad in ("?decision=maybe", "?since=yesterday", "?camera=front"):
        response = owner_client.get("/api/v1/events/" + bad)
        assert (response.status_code, response.json()["error"]) == (400, "invalid_filter")


def test_unknown_ids_are_json_404(owner_client):
    response = owner_client.get("/api/v1/people/999999/")
    assert (response.status_code, response.json()["error"]) == (404, "not_found")


def test_api_root_lists_every_collection(owner_client):
    links = owner_client.get("/api/v1/").json()
    assert {"people", "faces", "sites", "cameras", "events", "snapshots", "token"} <= set(links)


def test_openapi_schema_describes_the_api(owner_client):
    response = owner_client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for path in ("/api/v1/snapshots/", "/api/v1/events/{id}/", "/api/v1/people/{id}/faces/", "/api/v1/sites/{id}/"):
        assert path in paths, path
    assert "cameraApiKey" in schema["components"]["securitySchemes"]
    assert "202" in paths["/api/v1/snapshots/"]["post"]["responses"]


def test_browsable_api_renders_for_a_logged_in_teammate(users, site, camera):
    from rest_framework.test import APIClient

    client = APIClient()
    assert client.login(username="teammate", password="pw-teammate")
    for url in ["/api/v1/", "/api/v1/people/", "/api/v1/sites/", f"/api/v1/sites/{site.pk}/", "/api/v1/cameras/",
                "/api/v1/events/", "/api/v1/faces/"]:
        response = client.get(url, HTTP_ACCEPT="text/html")
        assert response.status_code == 200, url
        assert b"<html" in response.content[:500].lower() or b"<!doctype html" in response.content[:500].lower()


def test_staff_can_fetch_an_events_snapshot(owner_client, camera, media):
    import io

    from .conftest import image_bytes

    data = image_bytes((40, 50, 60))
    f = io.BytesIO(data)
    f.name = "snap.png"
    event_id = camera.client().post("/api/v1/snapshots/", {"image": f}, format="multipart").json()["id"]
    response = owner_client.get(f"/api/v1/events/{event_id}/snapshot/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
