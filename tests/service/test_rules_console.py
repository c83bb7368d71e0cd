"""The access-rules console pages (server side): the level editor saves the grid's text fields as a schedule,
says what is wrong with a bad one, the person's page shows where and when they may enter and their credentials
(never a PIN or a card number), and only admins change anything."""

from __future__ import annotations

import pytest
from django.test import Client

from access.rules.models import AccessLevel, Card, Holiday, PersonGroup, PersonPin

from .conftest import make_camera, make_person

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_level_editor_saves_the_week_and_shows_it_in_words(staff, site):
    admin = logged_in(staff.admin)
    group = PersonGroup.objects.create(name="Cleaning staff")
    form = {"name": "Cleaning staff", "sites": [site.pk], "groups": [group.pk],
            **{f"day_{d}": "18:00-22:00" for d in ("mon", "tue", "wed", "thu", "fri")}, "day_sat": "22:00-02:00"}
    response = admin.post("/rules/levels/new/", form, follow=True)
    assert response.status_code == 200
    level = AccessLevel.objects.get()
    assert level.schedule["mon"] == [["18:00", "22:00"]] and level.schedule["sat"] == [["22:00", "02:00"]]
    page = response.content.decode()
    assert "Mon-Fri 18:00-22:00, Sat 22:00-02:00" in page  # the rules page lists it in words
    editor = admin.get(f"/rules/levels/{level.pk}/").content.decode()
    assert editor.count('class="wg-cell on"') == 5 * 8 + 4 and editor.count('class="wg-cell carry"') == 4


def test_a_bad_week_is_refused_with_the_reason(staff):
    admin = logged_in(staff.admin)
    response = admin.post("/rules/levels/new/", {"name": "X", "day_mon": "18:00-25:00"})
    assert response.status_code == 200 and "not a time HH:MM" in response.content.decode()
    response = admin.post("/rules/levels/new/", {"name": "X", "day_tue": "18:00 to 22:00"})
    assert "write a range as 18:00-22:00" in response.content.decode()
    assert not AccessLevel.objects.exists()


def test_the_person_page_says_where_and_when_and_shows_credentials_without_secrets(staff, site):
    admin = logged_in(staff.admin)
    cleo = make_person("Cleo", sites=[site])
    server_room = make_camera(site, "server room").camera
    server_room.verification = "face_pin"
    server_room.save()
    level = AccessLevel.objects.create(name="IT", schedule={"sat": [["08:00", "12:00"]]})
    level.cameras.add(server_room)
    level.people.add(cleo)
    admin.post(f"/people/{cleo.pk}/credentials/", {"action": "pin", "pin": "482913"})
    admin.post(f"/people/{cleo.pk}/credentials/", {"action": "card", "card": "04A1B2C3D41234"})
    PersonPin.objects.filter(person=cleo).update(failures=5, locked_at="2026-12-03T07:00:00Z")
    page = admin.get(f"/people/{cleo.pk}/").content.decode()
    assert "Where and when may Cleo enter" in page
    assert page.count("data-entry>") == 2 and "Sat 08:00-12:00, not on holidays" in page and "face + PIN" in page
    assert "data-pin-locked" in page and "…1234" in page
    assert "482913" not in page and "04A1B2C3D4" not in page
    admin.post(f"/people/{cleo.pk}/credentials/", {"action": "unlock"})
    assert PersonPin.objects.get(person=cleo).locked_at is None
    bad = admin.post(f"/people/{cleo.pk}/credentials/", {"action": "pin", "pin": "12"}, follow=True)
    assert "4 to 12 digits" in bad.content.decode()


def test_holidays_and_roles(staff, site):
    admin, operator = logged_in(staff.admin), logged_in(staff.operator)
    url = f"/rules/sites/{site.pk}/holidays/"
    assert admin.post(url, {"date": "2026-12-25", "name": "Christmas"}).status_code == 302
    assert admin.post(url, {"date": "2026-12-25"}, follow=True).content.decode() \
        .count("already a holiday") == 1
    assert Holiday.objects.count() == 1
    assert operator.get("/rules/").status_code == 200  # every role reads
    assert operator.post("/rules/groups/new/", {"name": "X"}).status_code == 403
    assert operator.post(f"/people/{make_person('Bo').pk}/credentials/", {"action": "card", "card": "1234"}) \
        .status_code == 403
    assert not Card.objects.exists() and not PersonGroup.objects.exists()


def test_the_event_page_shows_the_second_factor(staff, site, camera):
    from django.utils import timezone

    from access.models import AccessEvent

    event = AccessEvent.objects.create(camera=camera.camera, site=site, received_at=timezone.now(), status="done",
                                       decision="denied", reason="matched somebody but PIN required",
                                       reason_code="pin_missing", verification="face_pin", second_factor="PIN missing")
    page = logged_in(staff.auditor).get(f"/events/{event.pk}/").content.decode()
    assert "data-second-factor>PIN missing" in page and "face_pin" in page


def test_the_access_log_shows_the_second_factor(staff, site, camera):
    from django.utils import timezone

    from access.models import AccessEvent

    AccessEvent.objects.create(camera=camera.camera, site=site, received_at=timezone.now(), status="done",
                               decision="denied", reason="matched somebody but the PIN is wrong for somebody",
                               reason_code="pin_wrong", verification="face_pin", second_factor="PIN wrong")
    page = logged_in(staff.auditor).get("/events/").content.decode()
    assert 'class="badge warn" data-second-factor>PIN wrong' in page
