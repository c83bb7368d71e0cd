"""The three liveness policies in the pure decision function: off ignores the live score, monitor records it
and never changes the decision, enforce denies a matched face under the threshold (or without a score) with
a reason code the log can filter on. And which face the worker must score: only the one that would let
somebody in."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from access.decisions import (
    LIVENESS_UNCHECKED,
    PRESENTATION_ATTACK,
    CameraRules,
    FaceInput,
    Grant,
    PersonFacts,
    SiteRules,
    decide,
    liveness_candidate,
)

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
PEOPLE = {1: PersonFacts(1, "Alice", True, None, None, (Grant(1),)),
          2: PersonFacts(2, "Bob", True, None, None, (Grant(1),)),
          3: PersonFacts(3, "Carol", False, None, None, (Grant(1),))}
CAMERA = CameraRules(camera_id=7)


def site(policy: str, threshold: float = 0.5) -> SiteRules:
    return SiteRules(1, 0.9, 40, 0.9, liveness_policy=policy, liveness_threshold=threshold)


def face(pid: int | None, distance: float | None, live: float | None = None) -> FaceInput:
    return FaceInput(0.99, 100.0, pid, distance, 1.3, None, live)


@pytest.mark.parametrize("live", [None, 0.01, 0.99])
def test_off_ignores_the_score(live):
    out = decide([face(1, 0.5, live)], site("off"), CAMERA, PEOPLE, NOW)
    assert (out.decision, out.person_id, out.code) == ("granted", 1, "")


@pytest.mark.parametrize("live", [None, 0.01, 0.99])
def test_monitor_never_changes_the_decision(live):
    out = decide([face(1, 0.5, live)], site("monitor"), CAMERA, PEOPLE, NOW)
    assert (out.decision, out.person_id, out.code) == ("granted", 1, "")
    assert site("monitor").suspected(live) == (live == 0.01)


def test_enforce_denies_a_print_with_a_reason_and_a_code():
    out = decide([face(1, 0.5, 0.08)], site("enforce"), CAMERA, PEOPLE, NOW)
    assert (out.decision, out.person_id, out.code) == ("denied", 1, PRESENTATION_ATTACK)
    assert out.reason == "matched Alice at 0.500 but presentation attack suspected: live 0.080 < 0.500"


def test_enforce_grants_a_live_face_at_exactly_the_threshold():
    out = decide([face(1, 0.5, 0.5)], site("enforce"), CAMERA, PEOPLE, NOW)
    assert (out.decision, out.person_id, out.code) == ("granted", 1, "")


def test_enforce_without_a_score_denies():
    out = decide([face(1, 0.5)], site("enforce"), CAMERA, PEOPLE, NOW)
    assert (out.decision, out.code) == ("denied", LIVENESS_UNCHECKED)
    assert "liveness could not be checked" in out.reason


def test_enforce_leaves_strangers_and_refusals_alone():
    assert decide([face(1, 1.2)], site("enforce"), CAMERA, PEOPLE, NOW).decision == "unknown"
    refused = decide([face(3, 0.5, 0.01)], site("enforce"), CAMERA, PEOPLE, NOW)  # inactive: denied for that
    assert (refused.decision, refused.code) == ("denied", "") and "inactive" in refused.reason


def test_a_spoofed_face_does_not_hide_a_live_colleague_beside_it():
    faces = [face(1, 0.4, 0.01), face(2, 0.6, 0.9)]
    out = decide(faces, site("enforce"), CAMERA, PEOPLE, NOW)
    assert (out.decision, out.person_id) == ("granted", 2)
    assert [o.code for o in out.faces] == [PRESENTATION_ATTACK, ""]


def test_only_the_face_that_would_let_somebody_in_is_scored():
    # A stranger, an inactive person and nobody at all are never scored.
    for policy in ("monitor", "enforce"):
        rules = site(policy)
        for faces in ([face(1, 1.2)], [face(3, 0.5)], [face(None, None)]):
            assert liveness_candidate(faces, rules, decide(faces, rules, CAMERA, PEOPLE, NOW)) is None
        assert liveness_candidate([face(1, 0.5)], site("off"), decide([face(1, 0.5)], site("off"), CAMERA,
                                                                         PEOPLE, NOW)) is None


def test_enforce_scores_the_nearest_candidate_first_then_the_next():
    rules = site("enforce")
    faces = [face(2, 0.6), face(1, 0.4), face(None, 1.5)]
    first = liveness_candidate(faces, rules, decide(faces, rules, CAMERA, PEOPLE, NOW))
    assert first == 1
    faces[1] = dataclasses.replace(faces[1], liveness=0.01)  # a print: the next candidate needs a score
    assert liveness_candidate(faces, rules, decide(faces, rules, CAMERA, PEOPLE, NOW)) == 0
    faces[0] = dataclasses.replace(faces[0], liveness=0.9)
    out = decide(faces, rules, CAMERA, PEOPLE, NOW)
    assert (out.decision, out.person_id) == ("granted", 2)
    assert liveness_candidate(faces, rules, out) is None


def test_monitor_scores_only_the_deciding_face():
    rules = site("monitor")
    faces = [face(2, 0.6), face(1, 0.4)]
    assert liveness_candidate(faces, rules, decide(faces, rules, CAMERA, PEOPLE, NOW)) == 1
    faces[1] = dataclasses.replace(faces[1], liveness=0.01)
    assert liveness_candidate(faces, rules, decide(faces, rules, CAMERA, PEOPLE, NOW)) is None
