"""Every API endpoint against every kind of caller: admin, operator, auditor, a camera, a user without a
role, and nobody. The expected answers are the roles of faceaccess/roles.py."""

from __future__ import annotations

import io

import pytest
from rest_framework.test import APIClient

from access.models import AccessEvent, Camera, Site
from enrollment.models import FaceImage, Person

from .conftest import image_bytes, make_camera

pytestmark = pytest.mark.django_db

ALL = {"admin", "operator", "auditor"}
EDIT = {"admin", "operator"}
ADMIN = {"admin"}


@pytest.fixture
def world(site, camera, media):
    person = Person.objects.create(name="Ada")
    person.sites.add(site)
    face = FaceImage.objects.create(person=person, image="faces/x.png")
    event = AccessEvent.objects.create(camera=camera.camera, site=site, received_at="2026-05-01T10:00:00Z",
                                       status="done", decision="unknown")
    return {"site": site, "camera": camera, "person": person, "face": face, "event": event}


def photo():
    f = io.BytesIO(image_bytes())
    f.name = "p.png"
    return f


def cases(w):
    """(name, method, path, body, who may)."""
    s, c, p, f, e = w["site"].pk, w["camera"].camera.pk, w["person"].pk, w["face"].pk, w["event"].pk
    return [
        ("list people", "get", "/api/v1/people/", None, ALL),
        ("read a person", "get", f"/api/v1/people/{p}/", None, ALL),
        ("create a person", "post", "/api/v1/people/", {"name": "Bo"}, EDIT),
        ("edit a person", "patch", f"/api/v1/people/{p}/", {"notes": "x"}, EDIT),
        ("upload a photo", "post", f"/api/v1/people/{p}/faces/", {"image": photo()}, EDIT),
        ("list faces", "get", "/api/v1/faces/", None, ALL),
        ("delete a photo", "delete", f"/api/v1/faces/{f}/", None, EDIT),
        ("list sites", "get", "/api/v1/sites/", None, ALL),
        ("create a site", "post", "/api/v1/sites/", {"name": "Annex", "match_threshold": 0.9}, ADMIN),
        ("change a threshold", "patch", f"/api/v1/sites/{s}/", {"match_threshold": 0.8}, ADMIN),
        ("list cameras", "get", "/api/v1/cameras/", None, ALL),
        ("create a camera", "post", "/api/v1/cameras/", {"site": s, "name": "new"}, ADMIN),
        ("rotate a key", "post", f"/api/v1/cameras/{c}/rotate-key/", None, ADMIN),
        ("rotate a webhook secret", "post", f"/api/v1/cameras/{c}/rotate-webhook-secret/", None, ADMIN),
        ("list events", "get", "/api/v1/events/", None, ALL | {"camera"}),
        ("read an event", "get", f"/api/v1/events/{e}/", None, ALL | {"camera"}),
        ("review an event", "post", f"/api/v1/events/{e}/review/", {"verdict": "confirmed"}, EDIT),
        ("list strangers", "get", "/api/v1/strangers/", None, ALL),
        ("dismiss strangers", "post", "/api/v1/strangers/act/", {"action": "dismiss", "faces": [1]}, EDIT),
        ("read the threshold tuning", "get", f"/api/v1/sites/{s}/tuning/", None, {"admin", "auditor"}),
        ("read the audit trail", "get", "/api/v1/audit/", None, {"admin", "auditor"}),
        ("read the model switch", "get", "/api/v1/embedder/", None, {"admin", "auditor"}),
        ("switch the model", "post", "/api/v1/embedder/switch/", {"model": "facenet-irv1"}, ADMIN),
        ("cancel the model switch", "post", "/api/v1/embedder/cancel/", {}, ADMIN),
        ("delete a person", "delete", f"/api/v1/people/{p}/", None, EDIT),
    ]


def client_for(who: str, staff, camera) -> APIClient:
    client = APIClient()
    if who == "camera":
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {camera.key}")
    elif who != "nobody":
        client.force_authenticate(getattr(staff, who))
    return client


@pytest.mark.parametrize("who", ["admin", "operator", "auditor", "camera", "norole", "nobody"])
def test_every_endpoint_answers_each_caller_by_role(world, staff, who):
    wrong = []
    for name, method, path, body, allowed in cases(world):
        client = client_for(who, staff, world["camera"])
        fmt = "multipart" if body and "image" in body else "json"
        response = getattr(client, method)(path, body, format=fmt) if body is not None else \
            getattr(client, method)(path)
        ok = response.status_code < 400
        if ok != (who in allowed):
            wrong.append(f"{name}: {response.status_code}")
        if not ok:
            assert response.status_code in (401, 403), (name, response.status_code, response.content)
            assert response["Content-Type"].startswith("application/json")
    assert wrong == []


def test_a_bare_is_staff_flag_grants_nothing(world, staff):
    assert staff.norole.is_staff
    client = client_for("norole", staff, world["camera"])
    assert client.get("/api/v1/sites/").status_code == 403
    assert client.patch(f"/api/v1/sites/{world['site'].pk}/", {"match_threshold": 0.1}, format="json").status_code \
        == 403
    assert Site.objects.get().match_threshold == 0.9


def test_an_auditor_never_sees_a_camera_key(world, staff):
    client = client_for("auditor", staff, world["camera"])
    listed = client.get("/api/v1/cameras/").json()["results"]
    assert "api_key" not in listed[0] and world["camera"].key not in str(listed)


def test_a_threshold_change_through_the_api_is_recorded_with_its_author(world, staff):
    client = client_for("admin", staff, world["camera"])
    assert client.patch(f"/api/v1/sites/{world['site'].pk}/", {"match_threshold": 0.85}, format="json"
                        ).status_code == 200
    entries = client_for("auditor", staff, world["camera"]).get("/api/v1/audit/", {"model": "site"}).json()
    change = entries["results"][0]
    assert change["actor"] == "admin-user" and change["action"] == "update"
    assert change["changes"]["match_threshold"] == ["0.9", "0.85"]


def test_other_cameras_see_only_their_own_events(world, staff):
    other = make_camera(world["site"], "back door")
    assert Camera.objects.count() == 2
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {other.key}")
    assert client.get("/api/v1/events/").json()["count"] == 0
    assert client.get(f"/api/v1/events/{world['event'].pk}/").status_code == 404
