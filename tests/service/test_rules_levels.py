"""Access levels at the door through the camera API, with the fake engine (tasks run inline): a group's level
opens the door by its schedule in the site's time zone, holidays close it, a camera's level opens that camera
only, and a plain grant keeps letting its person in at any time."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone

from access.rules.models import AccessLevel, Holiday, PersonGroup
from access.rules.schedule import DAYS

from .conftest import enroll_vector, fake_face, make_camera, make_person, near, unit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery", "media")]
TZ = "Pacific/Auckland"  # far from UTC: a level read in UTC would fall on the wrong hours (often the wrong day)


def today(offset_days: int = 0) -> str:
    return DAYS[(timezone.now().astimezone(zoneinfo.ZoneInfo(TZ)).weekday() + offset_days) % 7]


def whole_day(day: str) -> dict:
    return {day: [["00:00", "00:00"]]}


@pytest.fixture
def cleo(fake_pipeline, site):
    site.timezone = TZ
    site.save(update_fields=["timezone"])
    person = make_person("Cleo")  # no grant of the site: only levels let her in
    enroll_vector(person, unit(5))
    return person


def level(name: str, schedule: dict, sites=(), cameras=(), people=(), groups=(), **fields) -> AccessLevel:
    row = AccessLevel.objects.create(name=name, schedule=schedule, **fields)
    row.sites.set(sites)
    row.cameras.set(cameras)
    row.people.set(people)
    row.groups.set(groups)
    return row


def snap(fake_pipeline, seed: int) -> bytes:
    return fake_pipeline.register((seed, seed, seed), [fake_face(near(unit(5), 0.4, seed=seed))])


def test_a_groups_level_opens_by_its_schedule_in_the_sites_zone(fake_pipeline, site, camera, cleo):
    crew = PersonGroup.objects.create(name="Cleaning staff")
    crew.members.add(cleo)
    closed = level("Cleaning staff", whole_day(today(2)), sites=[site], groups=[crew])
    denied = camera.decided(snap(fake_pipeline, 1))
    assert (denied["decision"], denied["person"], denied["reason_code"]) == ("denied", cleo.pk, "outside_schedule")
    assert denied["reason"].startswith(f"matched Cleo at 0.400 but Cleaning staff: allowed {today(2).title()} "
                                       "00:00-00:00, not on holidays; now ")
    closed.schedule = whole_day(today())
    closed.save()
    granted = camera.decided(snap(fake_pipeline, 2))
    assert (granted["decision"], granted["reason"]) == ("granted", "matched Cleo at 0.400 <= 0.900 (Cleaning staff)")
    # The site's holiday today closes it, unless the level is marked "holidays too".
    Holiday.objects.create(site=site, date=timezone.now().astimezone(zoneinfo.ZoneInfo(TZ)).date(), name="Fete")
    assert camera.decided(snap(fake_pipeline, 3))["decision"] == "denied"
    closed.holidays_too = True
    closed.save()
    assert camera.decided(snap(fake_pipeline, 4))["decision"] == "granted"


def test_validity_dates_of_a_level(fake_pipeline, site, camera, cleo):
    local_today = timezone.now().astimezone(zoneinfo.ZoneInfo(TZ)).date()
    lv = level("Contractors", {}, sites=[site], people=[cleo], valid_until=local_today - dt.timedelta(days=1))
    out = camera.decided(snap(fake_pipeline, 11))
    assert out["decision"] == "denied" and f"valid until {local_today - dt.timedelta(days=1)}" in out["reason"]
    lv.valid_until = local_today
    lv.save()
    assert camera.decided(snap(fake_pipeline, 12))["decision"] == "granted"


def test_a_cameras_level_opens_that_camera_only(fake_pipeline, site, camera, cleo):
    server_room = make_camera(site, "server room")
    level("Server room", {}, cameras=[server_room.camera], people=[cleo], holidays_too=True)
    assert server_room.decided(snap(fake_pipeline, 21))["decision"] == "granted"
    front = camera.decided(snap(fake_pipeline, 22))
    assert (front["decision"], front["reason"]) == ("denied", "matched Cleo at 0.400 but Cleo does not belong to "
                                                              "this site")


def test_a_plain_grant_still_lets_in_at_any_time_beside_levels(fake_pipeline, site, camera, cleo):
    level("Cleaning staff", whole_day(today(3)), sites=[site], people=[cleo])
    cleo.sites.add(site)  # today's AccessGrant, no schedule: wins over the closed level
    assert camera.decided(snap(fake_pipeline, 31))["decision"] == "granted"
