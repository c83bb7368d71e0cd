"""The access-rules API: groups, access levels with their schedule (checked, stored in one form), holidays,
a person's credentials (never returned) with the PIN lockout, where and when a person may enter, the roles, and
the OpenAPI schema."""

from __future__ import annotations

import json

import pytest

from access.rules.models import AccessLevel, PersonPin

from .conftest import make_camera, make_person, token_client

pytestmark = pytest.mark.django_db
CLEANING = {d: [["18:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


@pytest.fixture
def admin(staff):
    return token_client(staff.admin)


def test_the_worked_example(admin, site):
    """Cleaning staff Mon-Fri 18:00-22:00 at the office; the server room camera needs face + PIN."""
    cleo = make_person("Cleo")
    server_room = make_camera(site, "server room").camera
    group = admin.post("/api/v1/groups/", {"name": "Cleaning staff", "members": [cleo.pk]}, format="json")
    assert group.status_code == 201, group.content
    level = admin.post("/api/v1/access-levels/", {"name": "Cleaning staff", "schedule": CLEANING,
                                                  "sites": [site.pk], "groups": [group.json()["id"]]}, format="json")
    assert level.status_code == 201, level.content
    assert level.json()["summary"] == "allowed Mon-Fri 18:00-22:00, not on holidays"
    it = admin.post("/api/v1/access-levels/", {"name": "IT", "cameras": [server_room.pk], "people": [cleo.pk],
                                               "holidays_too": True}, format="json")
    assert it.status_code == 201 and it.json()["summary"] == "allowed any time"
    door = admin.patch(f"/api/v1/cameras/{server_room.pk}/", {"verification": "face_pin"}, format="json")
    assert door.status_code == 200 and door.json()["verification"] == "face_pin"
    holiday = admin.post("/api/v1/holidays/", {"site": site.pk, "date": "2026-12-25", "name": "Christmas"},
                         format="json")
    assert holiday.status_code == 201
    assert admin.post("/api/v1/holidays/", {"site": site.pk, "date": "2026-12-25"}, format="json").status_code == 400
    rows = admin.get(f"/api/v1/people/{cleo.pk}/access/").json()
    assert [(r["camera"], r["how"], r["via"], r["when"], r["verification"]) for r in rows] == [
        ("every camera", "Cleaning staff", "group Cleaning staff", "Mon-Fri 18:00-22:00, not on holidays", "face"),
        ("server room", "IT", "directly", "any time", "face + PIN"),
    ]
    assert [lv["name"] for lv in admin.get(f"/api/v1/access-levels/?site={site.pk}").json()["results"]] == \
        ["Cleaning staff", "IT"]


@pytest.mark.parametrize("schedule, words", [
    ({"mon": [["18:00", "25:00"]]}, "not a time"),
    ({"someday": []}, "not a weekday"),
    ({"mon": [["08:00", "12:00"], ["11:00", "13:00"]]}, "overlaps"),
])
def test_a_bad_schedule_is_a_400_that_says_why_and_stores_nothing(admin, schedule, words):
    response = admin.post("/api/v1/access-levels/", {"name": "Bad", "schedule": schedule}, format="json")
    assert response.status_code == 400 and words in json.dumps(response.json())
    assert not AccessLevel.objects.exists()


def test_validity_dates_in_order_and_the_schedule_stored_in_one_form(admin):
    bad = admin.post("/api/v1/access-levels/", {"name": "X", "valid_from": "2026-03-01", "valid_until": "2026-02-01"},
                     format="json")
    assert bad.status_code == 400 and "valid_until" in json.dumps(bad.json())
    ok = admin.post("/api/v1/access-levels/", {"name": "Night", "schedule": {"fri": [["22:00", "02:00"]],
                                               "mon": [[" 08:00", "24:00"]]}}, format="json")
    assert ok.status_code == 201, ok.content
    assert ok.json()["schedule"] == {"mon": [["08:00", "00:00"]], "fri": [["22:00", "02:00"]]}


def test_credentials_are_set_never_returned_and_the_lockout_is_visible(admin, settings):
    ada, bo = make_person("Ada"), make_person("Bo")
    url = f"/api/v1/people/{ada.pk}/credentials/"
    set_pin = admin.post(url, {"pin": "482913"}, format="json")
    assert set_pin.status_code == 200 and "482913" not in set_pin.content.decode()
    assert set_pin.json()["has_pin"] is True
    card = admin.post(url, {"card": "04A1-B2C3-D4 1234", "label": "blue"}, format="json")
    assert card.json()["cards"][0]["last4"] == "1234" and "04A1" not in card.content.decode()
    taken = admin.post(f"/api/v1/people/{bo.pk}/credentials/", {"card": "04a1b2c3d41234"}, format="json")
    assert taken.status_code == 400 and taken.json()["error"] == "invalid_credential"
    short = admin.post(url, {"pin": "12"}, format="json")
    assert short.status_code == 400 and "4 to 12 digits" in short.json()["detail"]
    PersonPin.objects.filter(person=ada).update(failures=5, locked_at="2026-12-03T07:00:00Z")
    assert admin.get(url).json()["pin_locked"] is True
    assert [r["person"] for r in admin.get("/api/v1/pin-lockouts/").json()] == [ada.pk]
    assert admin.post(url, {"unlock": True}, format="json").json()["pin_locked"] is False
    audit = admin.get("/api/v1/audit/").json()["results"]
    unlocked = [e for e in audit if e["action"] == "update" and "locked_at" in (e["changes"] or {})]
    assert len(unlocked) == 1 and unlocked[0]["actor"] is not None  # who unlocked, recorded
    entries = json.dumps(audit)
    assert "482913" not in entries and "pin_hash" not in entries and "04A1" not in entries
    card_id = admin.get(url).json()["cards"][0]["id"]
    assert admin.delete(f"{url}?card={card_id}").json()["cards"] == []
    assert admin.delete(f"{url}?pin=1").json()["has_pin"] is False


def test_roles(staff, site):
    person = make_person("Ada")
    operator, auditor = token_client(staff.operator), token_client(staff.auditor)
    assert operator.post("/api/v1/access-levels/", {"name": "X"}, format="json").status_code == 403
    assert operator.post(f"/api/v1/people/{person.pk}/credentials/", {"pin": "1234"}, format="json").status_code == 403
    assert auditor.post("/api/v1/groups/", {"name": "X"}, format="json").status_code == 403
    assert auditor.get("/api/v1/access-levels/").status_code == 200
    assert auditor.get(f"/api/v1/people/{person.pk}/credentials/").status_code == 200
    assert token_client(staff.norole).get("/api/v1/groups/").status_code == 403


def test_openapi_describes_the_rules_and_the_snapshots_credential_fields(owner_client):
    schema = owner_client.get("/api/schema/?format=json").json()
    for path in ("/api/v1/groups/", "/api/v1/access-levels/", "/api/v1/holidays/",
                 "/api/v1/people/{id}/credentials/", "/api/v1/people/{id}/access/", "/api/v1/pin-lockouts/"):
        assert path in schema["paths"], path
    upload = schema["components"]["schemas"]["SnapshotUpload"]["properties"]
    assert {"pin", "card"} <= set(upload)
