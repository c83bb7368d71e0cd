"""A threshold is suggested only when enough people were enrolled for the rate to mean something, with its
uncertainty, and with a warning when it is above the model card's identification threshold."""

from __future__ import annotations

import numpy as np

from access.review.suggestion import people_needed, suggest, wilson_interval
from access.review.tuning import SiteDistances


def distances(people: int, seed: int = 0) -> SiteDistances:
    nearest_other = np.random.default_rng(seed).uniform(0.9, 1.5, people)
    return SiteDistances(people=people, embeddings=2 * people, genuine=np.array([0.5]), impostor=nearest_other,
                         nearest_other=nearest_other, nearest_own=np.full(people, 0.5), model="sface")


def test_a_five_person_site_gets_no_suggestion_but_how_many_people_it_needs():
    s = suggest(distances(5), 0.01, card_threshold=0.998)
    assert not s.enough and s.value is None and s.needed == 300 and people_needed(0.05) == 60


def test_enough_people_give_a_suggestion_with_its_interval():
    s = suggest(distances(400), 0.01, card_threshold=2.0)
    assert s.enough and s.far is not None and s.far <= 0.01
    assert s.far_low <= s.far <= s.far_high and s.far_high < 0.03 and not s.above_card


def test_a_suggestion_above_the_model_card_threshold_is_flagged():
    s = suggest(distances(400), 0.05, card_threshold=0.92)
    assert s.enough and s.value > 0.92 and s.above_card


def test_wilson_interval_at_zero_and_at_half():
    low, high = wilson_interval(0, 300)
    assert low < 1e-12 and 0.005 < high < 0.015
    low, high = wilson_interval(50, 100)
    assert low < 0.5 < high and abs((low + high) / 2 - 0.5) < 1e-9
