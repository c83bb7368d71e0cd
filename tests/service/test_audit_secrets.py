"""Secrets (camera keys, webhook secrets, tokens, passwords) never appear in the audit trail or in an API answer
after the one that created them: a tour through the API and the console, then a scan of everything."""

from __future__ import annotations

import json

import pytest
from auditlog.models import LogEntry
from django.forms.models import model_to_dict
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from access.models import Camera, hash_api_key

pytestmark = pytest.mark.django_db


def _between(html: str, marker: str) -> str:
    return html.split(marker, 1)[1].split("<", 1)[0]


def test_no_secret_in_the_audit_trail_or_the_api_after_a_tour(staff, site):
    _, token = AuthToken.objects.create(staff.admin)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    secrets = {token, "pw-admin", "pw-auditor", "pw-operator"}

    created = api.post("/api/v1/cameras/", {"site": site.pk, "name": "front", "active": True}, format="json").json()
    secrets |= {created["api_key"], created["webhook_secret"]}
    cid = created["id"]
    rotated = api.post(f"/api/v1/cameras/{cid}/rotate-key/").json()
    assert "webhook_secret" not in rotated  # rotating the key does not show the secret again
    secrets.add(rotated["api_key"])
    new_secret = api.post(f"/api/v1/cameras/{cid}/rotate-webhook-secret/").json()["webhook_secret"]
    assert new_secret != created["webhook_secret"] and Camera.objects.get(pk=cid).webhook_secret == new_secret
    secrets.add(new_secret)
    api.patch(f"/api/v1/cameras/{cid}/", {"webhook_url": "https://door.example.com/hook"}, format="json")
    api.patch(f"/api/v1/sites/{site.pk}/", {"match_threshold": 0.85}, format="json")
    issued = APIClient().post("/api/v1/auth/token/", {"username": "operator-user", "password": "pw-operator"},
                              format="json").json()
    secrets.add(issued["token"])
    person = api.post("/api/v1/people/", {"name": "Ada", "sites": [site.pk]}, format="json").json()
    api.patch(f"/api/v1/people/{person['id']}/", {"notes": "night shift"}, format="json")

    console = Client()
    console.force_login(staff.admin)
    html = console.post(f"/sites/{site.pk}/cameras/new/", {"name": "lobby", "active": "on"}).content.decode()
    secrets |= {_between(html, "data-api-key>"), _between(html, "data-webhook-secret>")}
    lobby = Camera.objects.get(name="lobby")
    html = console.post(f"/cameras/{lobby.pk}/rotate/").content.decode()
    assert "data-webhook-secret" not in html and lobby.webhook_secret not in html
    secrets.add(_between(html, "data-api-key>"))
    html = console.post(f"/cameras/{lobby.pk}/rotate-secret/").content.decode()
    secrets.add(_between(html, "data-webhook-secret>"))
    secrets |= {hash_api_key(s) for s in list(secrets)}
    assert all(len(s) >= 6 for s in secrets)

    # The rotations themselves are recorded, without their values.
    whats = [e.additional_data.get("what") for e in LogEntry.objects.exclude(additional_data=None)]
    assert whats.count("webhook secret rotated") == 2

    entries = [json.dumps(model_to_dict(e), default=str) for e in LogEntry.objects.all()]
    assert len(entries) >= 6
    auditor = APIClient()
    auditor.force_authenticate(staff.auditor)
    answers = [auditor.get(url).content.decode() for url in (
        "/api/v1/audit/", "/api/v1/cameras/", f"/api/v1/cameras/{cid}/", "/api/v1/sites/", "/api/v1/events/",
        "/api/v1/people/", "/api/v1/embedder/")]
    reader = Client()
    reader.force_login(staff.auditor)
    answers += [reader.get(url).content.decode() for url in ("/activity/", "/sites/", "/models/")]
    for secret in secrets:
        for text in entries + answers:
            assert secret not in text, f"a secret ({secret[:6]}…) is readable: {text[:300]}"


def test_any_field_named_like_a_secret_is_dropped_from_an_entry(site, camera):
    """Tables other engineers add (stream credentials, PINs, tokens) are covered without their own exclude list."""
    from faceaccess import audit

    entry = audit.record(camera.camera, "stream added", {"stream_password": ("", "hunter22"), "pin_hash": ("", "x1"),
                                                         "api_token": ("", "t0k"), "stream_url": ("", "rtsp://d")})
    entry.refresh_from_db()
    assert set(entry.changes) == {"stream_url"}
    assert "hunter22" not in json.dumps(model_to_dict(entry), default=str)
