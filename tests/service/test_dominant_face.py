"""The dominant-face rule (enrollment.dominant) on synthetic faces: a box per face in a 400x300 photo."""

from __future__ import annotations

import pytest

from enrollment.dominant import SIZE_RATIO, box_iou, dominant_face, face_size

W, H = 400, 300


def at(cx: float, cy: float, size: float) -> list[float]:
    """A square face of ``size`` px centred at (cx, cy)."""
    return [cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2]


def pick(*boxes):
    return dominant_face(list(boxes), W, H)


# ---------------------------------------------------------------- a clear winner by size --------------------

def test_a_face_much_larger_than_the_others_wins_wherever_the_others_are():
    choice = pick(at(60, 60, 50), at(190, 170, 140), at(340, 90, 60))
    assert choice.index == 1
    assert choice.reason == "largest face, 2.3x the next"


def test_the_largest_wins_even_off_centre_when_no_other_face_is_central():
    choice = pick(at(100, 150, 150), at(330, 150, 90))  # neither holds the centre
    assert choice.index == 0 and choice.reason.startswith("largest face, 1.7x")


def test_exactly_the_size_ratio_is_enough_and_just_under_is_not():
    assert pick(at(110, 150, 150), at(300, 150, 100)).index == 0  # 1.5x
    assert pick(at(110, 150, 149), at(300, 150, 100)).index is None  # 1.49x, and neither is central


# ---------------------------------------------------------------- a clear winner by centrality --------------

def test_the_face_at_the_centre_wins_over_faces_of_similar_size_away_from_it():
    choice = pick(at(60, 80, 90), at(205, 150, 100), at(340, 200, 95))
    assert choice.index == 1
    assert choice.reason.startswith("the face nearest the centre, the next")


def test_a_central_face_may_be_somewhat_smaller_than_the_largest():
    assert pick(at(70, 100, 110), at(200, 160, 80)).index == 1  # 1.375x smaller, at the centre


def test_a_portrait_face_above_the_centre_still_counts_as_central():
    # Head-and-shoulders framing: the face sits a third of its size above the centre.
    assert pick(at(200, 110, 120), at(370, 60, 100)).index == 0


# ---------------------------------------------------------------- no winner ----------------------------------

def test_two_similar_faces_side_by_side_have_no_winner():
    choice = pick(at(130, 150, 100), at(270, 150, 100))
    assert choice.index is None
    assert "none is clearly nearest the centre" in choice.reason


def test_a_second_face_close_to_the_centre_spoils_centrality():
    # Nearest is 10 px off, the next 25 px: not 3x as far, and within half a face of the centre.
    assert pick(at(210, 150, 100), at(200, 175, 95)).index is None


def test_a_central_face_far_smaller_than_the_largest_is_not_taken():
    choice = pick(at(80, 150, 110), at(320, 150, 100), at(200, 150, 50))
    assert choice.index is None and "smaller than the largest" in choice.reason


def test_a_large_face_at_the_edge_does_not_beat_a_central_one():
    # 1.6x larger but cut at the edge, while a smaller face holds the centre: ambiguous, a person decides.
    choice = pick(at(360, 150, 160), at(195, 150, 100))
    assert choice.index is None and "off-centre" in choice.reason


# ---------------------------------------------------------------- edges --------------------------------------

def test_one_face_is_taken_and_none_is_no_choice():
    assert pick(at(10, 10, 50)) .index == 0
    assert dominant_face([], W, H).index is None


def test_the_index_is_the_position_in_the_list_given():
    assert pick(at(330, 60, 60), at(190, 160, 150)).index == 1


@pytest.mark.parametrize(("a", "b", "iou"), [
    (at(100, 100, 100), at(100, 100, 100), 1.0),
    (at(100, 100, 100), at(300, 100, 100), 0.0),
    ([0, 0, 100, 100], [50, 0, 150, 100], 1 / 3),
])
def test_box_overlap(a, b, iou):
    assert box_iou(a, b) == pytest.approx(iou)


def test_size_is_the_shorter_side():
    assert face_size([0, 0, 80, 120]) == 80 and SIZE_RATIO == 1.5
