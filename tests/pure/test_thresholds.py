"""A site's threshold rules (access.thresholds) on plain objects: no database, no server.

The numbers are the model cards' identification thresholds (sface 0.998, facenet-irv1 0.765); a model with
none (facenet-mobilenet, a local one) gets no default.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from django.core.exceptions import ValidationError

from access.thresholds import model_default_threshold, remap_threshold, threshold_for, validate_threshold

SWITCH_DAY = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


@dataclass
class FakeSite:
    match_threshold: float
    threshold_model: str = "sface"
    other_thresholds: dict = field(default_factory=dict)
    threshold_note: str = ""
    pk: int = 1
    saved: list = field(default_factory=list)

    def save(self, update_fields: list[str]) -> None:
        self.saved.append(update_fields)


def test_the_model_cards_give_the_defaults():
    assert model_default_threshold("sface") == pytest.approx(0.998)
    assert model_default_threshold("facenet-irv1") == pytest.approx(0.765)
    assert model_default_threshold("facenet-mobilenet") is None
    assert model_default_threshold("no-such-model") is None


@pytest.mark.parametrize("value", [0.0, -0.1, 2.01, 5.0])
def test_a_threshold_out_of_range_is_refused(value):
    with pytest.raises(ValidationError):
        validate_threshold(value)


def test_a_threshold_applies_only_to_its_own_model():
    site = FakeSite(0.9, "sface", {"facenet-irv1": 0.7})
    assert threshold_for(site, "sface") == 0.9
    assert threshold_for(site, "facenet-irv1") == 0.7  # remembered from before a switch
    assert threshold_for(FakeSite(0.9, "sface"), "facenet-irv1") == pytest.approx(0.765)  # never sface's 0.9
    with pytest.raises(ValueError, match="no threshold for 'facenet-mobilenet'"):
        threshold_for(FakeSite(0.9, "sface"), "facenet-mobilenet")


def test_a_default_threshold_becomes_the_new_models_default_with_no_note():
    site = FakeSite(0.998)
    assert remap_threshold(site, "sface", "facenet-irv1", SWITCH_DAY) == ""
    assert (site.match_threshold, site.threshold_model, site.other_thresholds) == \
        (pytest.approx(0.765), "facenet-irv1", {})
    assert len(site.saved) == 1


def test_a_custom_threshold_is_kept_for_its_model_and_restored_when_it_comes_back():
    site = FakeSite(0.9)
    note = remap_threshold(site, "sface", "facenet-irv1", SWITCH_DAY)
    assert (site.match_threshold, site.other_thresholds) == (pytest.approx(0.765), {"sface": 0.9})
    assert "re-tune" in note and "2026-12-01" in note and site.threshold_note == note
    note = remap_threshold(site, "facenet-irv1", "sface", SWITCH_DAY)
    assert (site.match_threshold, site.threshold_model, site.other_thresholds) == (0.9, "sface", {})
    assert "restored" in note


def test_no_switch_no_change():
    site = FakeSite(0.9)
    assert remap_threshold(site, "sface", "sface", SWITCH_DAY) == ""
    assert site.saved == [] and site.match_threshold == 0.9
