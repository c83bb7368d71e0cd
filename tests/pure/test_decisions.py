"""The access decision is a pure function: no database, no clock, no engine."""

from __future__ import annotations

import datetime as dt

import pytest

from access.decisions import CameraRules, FaceInput, Grant, PersonFacts, SiteRules, decide, refusal

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
SITE = SiteRules(site_id=1, threshold=0.9, min_face_px=40, min_detection_score=0.9)
ANY_CAMERA = CameraRules(camera_id=7)


def person(pid: int, name: str, active: bool = True, sites=(1,), valid_from=None, valid_until=None,
           grants=()) -> PersonFacts:
    return PersonFacts(pid, name, active, valid_from, valid_until, tuple(Grant(s) for s in sites) + tuple(grants))


PEOPLE = {
    1: person(1, "Alice"),
    2: person(2, "Bob"),
    3: person(3, "Carol", active=False),
    4: person(4, "Dave", sites=(2,)),
    5: person(5, "Erin", valid_until=NOW - dt.timedelta(days=1)),
    6: person(6, "Frank", valid_from=NOW + dt.timedelta(hours=1)),
    7: person(7, "Grace", sites=(), grants=[Grant(1, valid_until=NOW - dt.timedelta(minutes=1))]),
    8: person(8, "Heidi", sites=(), grants=[Grant(1, valid_from=NOW + dt.timedelta(days=2))]),
    9: person(9, "Ivan", sites=(), grants=[Grant(1, NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=1))]),
}


def face(pid: int | None, distance: float | None, score: float = 0.99, size: float = 100.0) -> FaceInput:
    return FaceInput(score=score, size_px=size, nearest_person_id=pid, distance=distance, runner_up_distance=1.3)


def test_no_face_detected():
    out = decide([], SITE, ANY_CAMERA, PEOPLE, NOW)
    assert (out.decision, out.person_id, out.faces) == ("no_face", None, ())
    assert out.reason == "no face detected"


def test_granted_at_exactly_the_threshold():
    out = decide([face(1, 0.9)], SITE, ANY_CAMERA, PEOPLE, NOW)
    assert (out.decision, out.person_id) == ("granted", 1)
    assert out.faces[0].decision == "granted"
    assert "Alice" in out.reason


def test_just_over_the_threshold_is_unknown():
    out = decide([face(1, 0.9001)], SITE, ANY_CAMERA, PEOPLE, NOW)
    assert (out.decision, out.person_id) == ("unknown", None)
    assert "0.900" in out.reason


def test_nobody_enrolled_is_unknown():
    out = decide([face(None, None)], SITE, ANY_CAMERA, PEOPLE, NOW)
    assert out.decision == "unknown"
    assert "nobody is enrolled" in out.reason


@pytest.mark.parametrize(
    ("pid", "why"),
    [
        (3, "inactive"),
        (4, "does not belong to this site"),
        (5, "validity ended"),
        (6, "valid only from"),
        (7, "access to this site ended"),
        (8, "may enter this site only from"),
    ],
)
def test_known_person_not_allowed_is_denied(pid, why):
    out = decide([face(pid, 0.5)], SITE, ANY_CAMERA, PEOPLE, NOW)
    assert (out.decision, out.person_id) == ("denied", pid)
    assert why in out.reason


def test_a_grant_inside_its_validity_window_lets_in():
    out = decide([face(9, 0.5)], SITE, ANY_CAMERA, PEOPLE, NOW)
    assert (out.decision, out.person_id) == ("granted", 9)


def test_camera_allow_list_narrows_the_site():
    camera = CameraRules(camera_id=7, allowed_people=frozenset({2}))
    assert decide([face(1, 0.5)], SITE, camera, PEOPLE, NOW).decision == "denied"
    assert "allow-list" in decide([face(1, 0.5)], SITE, camera, PEOPLE, NOW).reason
    assert decide([face(2, 0.5)], SITE, camera, PEOPLE, NOW).decision == "granted"


def test_empty_allow_list_means_everyone_of_the_site():
    camera = CameraRules(camera_id=7, allowed_people=frozenset())
    assert decide([face(1, 0.5)], SITE, camera, PEOPLE, NOW).decision == "granted"


def test_validity_bounds_are_inclusive():
    edge = {1: person(1, "Alice", valid_from=NOW, valid_until=NOW)}
    assert decide([face(1, 0.5)], SITE, ANY_CAMERA, edge, NOW).decision == "granted"


def test_one_granted_face_among_others_grants_the_best_match():
    faces = [face(None, None), face(3, 0.3), face(2, 0.7), face(1, 0.6)]
    out = decide(faces, SITE, ANY_CAMERA, PEOPLE, NOW)
    assert (out.decision, out.person_id) == ("granted", 1)  # Carol is nearer but inactive
    assert [f.decision for f in out.faces] == ["unknown", "denied", "granted", "granted"]


def test_denied_beats_unknown():
    out = decide([face(None, None), face(4, 0.8), face(3, 0.4)], SITE, ANY_CAMERA, PEOPLE, NOW)
    assert (out.decision, out.person_id) == ("denied", 3)


def test_faces_under_the_site_minimums_are_ignored_and_said_so():
    faces = [face(1, 0.1, size=39.0), face(1, 0.1, score=0.5)]
    out = decide(faces, SITE, ANY_CAMERA, PEOPLE, NOW)
    assert out.decision == "no_face"
    assert [f.decision for f in out.faces] == ["ignored", "ignored"]
    assert "2 faces detected, none usable" in out.reason
    assert "39 px" in out.reason and "0.50" in out.reason


def test_ignored_face_does_not_hide_a_usable_one():
    out = decide([face(1, 0.1, size=10.0), face(2, 0.5)], SITE, ANY_CAMERA, PEOPLE, NOW)
    assert (out.decision, out.person_id) == ("granted", 2)


def test_replay_with_another_threshold_uses_the_same_function():
    faces = [face(1, 0.75)]
    assert decide(faces, SITE, ANY_CAMERA, PEOPLE, NOW).decision == "granted"
    stricter = SiteRules(1, 0.7, 40, 0.9)
    assert decide(faces, stricter, ANY_CAMERA, PEOPLE, NOW).decision == "unknown"


def test_matched_person_deleted_meanwhile_is_unknown():
    assert decide([face(99, 0.2)], SITE, ANY_CAMERA, PEOPLE, NOW).decision == "unknown"


def test_refusal_is_none_for_an_allowed_person():
    assert refusal(PEOPLE[1], SITE, ANY_CAMERA, NOW) is None


def test_decide_does_not_touch_the_database():
    # pytest-django blocks database access in tests without the db fixture: reaching it would raise.
    decide([face(1, 0.5), face(None, None)], SITE, ANY_CAMERA, PEOPLE, NOW)


def test_a_face_nearer_a_known_impostor_than_the_person_is_not_let_in_as_them():
    marked = FaceInput(0.99, 100.0, 1, 0.5, 1.2, impostor_distance=0.3)
    out = decide([marked], SITE, ANY_CAMERA, PEOPLE, NOW)
    assert (out.decision, out.person_id) == ("unknown", None)
    assert "marked 'not Alice' (0.300)" in out.reason and "own photos (0.500)" in out.reason
    farther = FaceInput(0.99, 100.0, 1, 0.5, 1.2, impostor_distance=0.7)
    assert decide([farther], SITE, ANY_CAMERA, PEOPLE, NOW).decision == "granted"
