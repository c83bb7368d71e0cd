"""The decision with access rules (access.decisions + access.rules): grants, access levels in the door's local
time, and the second factor per door. Pure: the PIN / card checks arrive as outcomes."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from access.decisions import CameraRules, FaceInput, Grant, PersonFacts, SiteRules, decide
from access.rules import factors
from access.rules.factors import CredentialCheck
from access.rules.schedule import Level, parse

SITE = SiteRules(site_id=1, threshold=0.9, min_face_px=40, min_detection_score=0.9, timezone="Europe/Berlin")
DOOR = CameraRules(camera_id=7)
SERVER_ROOM = CameraRules(camera_id=8, verification=factors.FACE_PIN)
CLEANING = Level(1, "Cleaning staff", parse({d: [["18:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}),
                 sites=frozenset({1}))
SERVER = Level(2, "Server room", (), cameras=frozenset({8}), holidays_too=True)

PEOPLE = {
    1: PersonFacts(1, "Alice", True, None, None, (Grant(1),)),  # today's grant: any time
    2: PersonFacts(2, "Cleo", True, None, None, (), (CLEANING,)),
    3: PersonFacts(3, "Ivan", True, None, None, (), (SERVER,)),
    4: PersonFacts(4, "Other", True, None, None, (), (Level(3, "Elsewhere", (), sites=frozenset({2})),)),
}


def berlin(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")).astimezone(dt.UTC)


def face(pid: int, distance: float = 0.4) -> FaceInput:
    return FaceInput(score=0.99, size_px=100.0, nearest_person_id=pid, distance=distance, runner_up_distance=1.3)


SATURDAY = berlin("2026-12-12 10:02")
MONDAY_EVENING = berlin("2026-12-07 19:00")


def test_a_grant_without_a_schedule_lets_in_at_any_time():
    for when in (SATURDAY, berlin("2026-12-13 03:00"), MONDAY_EVENING):
        assert decide([face(1)], SITE, DOOR, PEOPLE, when).decision == "granted"


def test_a_level_lets_in_by_its_schedule_in_the_sites_time_zone_and_says_why_not():
    granted = decide([face(2)], SITE, DOOR, PEOPLE, MONDAY_EVENING)
    assert (granted.decision, granted.person_id) == ("granted", 2)
    assert granted.reason == "matched Cleo at 0.400 <= 0.900 (Cleaning staff)"
    denied = decide([face(2)], SITE, DOOR, PEOPLE, SATURDAY)
    assert (denied.decision, denied.code) == ("denied", "outside_schedule")
    assert denied.reason == ("matched Cleo at 0.400 but Cleaning staff: allowed Mon-Fri 18:00-22:00, not on "
                             "holidays; now Sat 10:02")
    # 17:30 UTC is 18:30 in Berlin: allowed there, though not in UTC.
    at_1730_utc = dt.datetime(2026, 12, 7, 17, 30, tzinfo=dt.UTC)
    assert decide([face(2)], SITE, DOOR, PEOPLE, at_1730_utc).decision == "granted"
    utc_site = SiteRules(1, 0.9, 40, 0.9, timezone="UTC")
    assert decide([face(2)], utc_site, DOOR, PEOPLE, at_1730_utc).decision == "denied"


def test_holidays_of_the_site_close_the_levels_not_marked_for_them():
    with_holiday = SiteRules(1, 0.9, 40, 0.9, timezone="Europe/Berlin", holidays=frozenset({dt.date(2026, 12, 7)}))
    out = decide([face(2)], with_holiday, DOOR, PEOPLE, MONDAY_EVENING)
    assert out.decision == "denied" and out.reason.endswith("now Mon 2026-12-07 19:00, a holiday")
    assert decide([face(1)], with_holiday, DOOR, PEOPLE, MONDAY_EVENING).decision == "granted"  # a grant: any day


def test_a_camera_level_opens_that_camera_only_and_other_sites_levels_nothing():
    assert decide([face(3)], SITE, SERVER_ROOM, PEOPLE, SATURDAY,
                  CredentialCheck({3: factors.PIN_OK})).decision == "granted"
    out = decide([face(3)], SITE, DOOR, PEOPLE, SATURDAY)
    assert (out.decision, out.reason) == ("denied", "matched Ivan at 0.400 but Ivan does not belong to this site")
    assert decide([face(4)], SITE, DOOR, PEOPLE, SATURDAY).reason.endswith("does not belong to this site")


def test_face_and_pin():
    def at_server_room(pid: int, check: CredentialCheck):
        return decide([face(pid)], SITE, SERVER_ROOM, PEOPLE, SATURDAY, check)

    ok = at_server_room(3, CredentialCheck({3: factors.PIN_OK}))
    assert (ok.decision, ok.reason) == ("granted", "matched Ivan at 0.400 <= 0.900 (Server room), PIN ok")
    wrong = at_server_room(3, CredentialCheck({3: factors.PIN_WRONG}))
    assert (wrong.decision, wrong.code, wrong.reason) == ("denied", "pin_wrong",
                                                          "matched Ivan at 0.400 but the PIN is wrong for Ivan")
    missing = at_server_room(3, factors.NO_CREDENTIAL)
    assert (missing.decision, missing.code, missing.reason) == ("denied", "pin_missing",
                                                                "matched Ivan at 0.400 but PIN required")
    locked = at_server_room(3, CredentialCheck({3: factors.PIN_LOCKED}))
    assert (locked.decision, locked.code) == ("denied", "pin_locked") and "locked" in locked.reason
    unset = at_server_room(3, CredentialCheck({3: factors.PIN_UNSET}))
    assert (unset.decision, unset.code, unset.reason) == ("denied", "pin_wrong",
                                                          "matched Ivan at 0.400 but Ivan has no PIN")
    # Somebody else's right PIN with Ivan's face: checked against Ivan, it is wrong.
    other = at_server_room(3, CredentialCheck({1: factors.PIN_OK}))
    assert (other.decision, other.code) == ("denied", "pin_wrong")
    # The schedule comes first: a right PIN does not open a door the person may not use.
    assert at_server_room(2, CredentialCheck({2: factors.PIN_OK})).code == "outside_schedule"


def test_face_and_card():
    door = CameraRules(7, verification=factors.FACE_CARD)
    mine = decide([face(1)], SITE, door, PEOPLE, SATURDAY, CredentialCheck(None, "1234", 1))
    assert (mine.decision, mine.reason) == ("granted", "matched Alice at 0.400 <= 0.900, card …1234")
    theirs = decide([face(1)], SITE, door, PEOPLE, SATURDAY, CredentialCheck(None, "9876", 2))
    assert (theirs.decision, theirs.code, theirs.reason) == (
        "denied", "card_mismatch", "matched Alice at 0.400 but card …9876 belongs to someone else")
    unknown = decide([face(1)], SITE, door, PEOPLE, SATURDAY, CredentialCheck(None, "5555", None))
    assert (unknown.decision, unknown.code) == ("denied", "card_unknown")
    none = decide([face(1)], SITE, door, PEOPLE, SATURDAY)
    assert (none.decision, none.code, none.reason) == ("denied", "card_missing",
                                                       "matched Alice at 0.400 but card required")


def test_card_or_face_either_alone():
    site = SiteRules(1, 0.9, 40, 0.9, timezone="Europe/Berlin", verification=factors.CARD_OR_FACE)
    assert decide([face(1)], site, DOOR, PEOPLE, SATURDAY).decision == "granted"  # the face alone
    by_card = decide([], site, DOOR, PEOPLE, SATURDAY, CredentialCheck(None, "1234", 1))  # the card alone
    assert (by_card.decision, by_card.person_id, by_card.reason) == ("granted", 1, "card …1234 of Alice")
    stranger = FaceInput(0.99, 100.0, 1, 1.2, 1.3)  # nobody within the threshold, but a good card
    assert decide([stranger], site, DOOR, PEOPLE, SATURDAY, CredentialCheck(None, "1234", 1)).decision == "granted"
    out_of_hours = decide([], site, DOOR, PEOPLE, SATURDAY, CredentialCheck(None, "4321", 2))
    assert (out_of_hours.decision, out_of_hours.code) == ("denied", "outside_schedule")
    assert out_of_hours.reason.startswith("card …4321 of Cleo but Cleaning staff: allowed Mon-Fri")
    nobody = decide([], site, DOOR, PEOPLE, SATURDAY, CredentialCheck(None, "0000", None))
    assert (nobody.decision, nobody.code) == ("unknown", "card_unknown")
    # The camera's own mode wins over the site's.
    assert decide([face(1)], site, CameraRules(7, verification=factors.FACE_PIN), PEOPLE, SATURDAY).code == \
        "pin_missing"


def test_the_stored_credential_check_replays_the_same():
    check = CredentialCheck({3: factors.PIN_WRONG}, "1234", 1)
    assert CredentialCheck.from_stored(check.stored()) == check
    assert "1234" in str(check.stored()) and check.summary(factors.FACE_PIN, 3) == "PIN wrong"
    assert factors.NO_CREDENTIAL.summary(factors.FACE_PIN, 3) == "PIN missing"
    assert check.summary(factors.FACE_CARD, 1) == "card …1234"
