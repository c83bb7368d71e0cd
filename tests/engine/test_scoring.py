"""Identification scoring on synthetic unit vectors (no models, no LFW)."""

import numpy as np
import pytest

from recognition.engine import scoring as sc


def unit(rng, n, d=128):
    return sc.normalise(rng.normal(size=(n, d)))


def test_flip_average_is_the_renormalised_sum():
    rng = np.random.default_rng(0)
    a, b = unit(rng, 5), unit(rng, 5)
    out = sc.flip_average(a, b)
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-6)
    assert np.allclose(out, (a + b) / np.linalg.norm(a + b, axis=1, keepdims=True), atol=1e-6)
    # The same maths as Pipeline.faces(flip_tta=True): mean or sum, same direction.
    assert np.allclose(sc.flip_average(a, b), sc.normalise((a + b) / 2), atol=1e-6)


def test_template_modes():
    rng = np.random.default_rng(1)
    e = unit(rng, 3)
    assert np.allclose(sc.template(e, "photos"), e)
    mean = sc.template(e, "mean")
    assert mean.shape == (1, 128) and np.isclose(np.linalg.norm(mean), 1, atol=1e-6)
    assert np.allclose(mean[0], e.mean(0) / np.linalg.norm(e.mean(0)), atol=1e-6)
    both = sc.template(e, "photos+mean")
    assert both.shape == (4, 128) and np.allclose(both[:3], e) and np.allclose(both[3], mean[0])
    # One photo: every mode is that photo, once.
    for mode in sc.TEMPLATE_MODES:
        assert np.allclose(sc.template(e[:1], mode), e[:1])
    # Un-normalised input is normalised first.
    assert np.allclose(sc.template(3 * e, "photos"), e, atol=1e-6)
    with pytest.raises(ValueError):
        sc.template(e, "median")
    with pytest.raises(ValueError):
        sc.template(np.zeros((0, 128)), "mean")


def test_build_gallery_keeps_people_contiguous_in_first_seen_order():
    rng = np.random.default_rng(2)
    e = unit(rng, 5)
    rows, who = sc.build_gallery(e, ["bob", "ann", "bob", "cid", "ann"], "photos+mean")
    assert who.tolist() == ["bob"] * 3 + ["ann"] * 3 + ["cid"]
    assert np.allclose(rows[0], e[0]) and np.allclose(rows[1], e[2])
    rows, who = sc.build_gallery(e, ["bob", "ann", "bob", "cid", "ann"], "mean")
    assert who.tolist() == ["bob", "ann", "cid"]
    with pytest.raises(ValueError):
        sc.build_gallery(e, ["bob"], "mean")


def brute_nearest_two(rows, who, probe):
    d = np.linalg.norm(rows - probe, axis=1)
    per = {}
    for p, x in zip(who, d, strict=True):
        per[p] = min(per.get(p, np.inf), x)
    ranked = sorted(per.items(), key=lambda kv: kv[1])
    return ranked[0], ranked[1] if len(ranked) > 1 else (None, np.inf)


def test_nearest_two_matches_brute_force_with_min_over_each_persons_rows():
    rng = np.random.default_rng(3)
    rows = unit(rng, 40, 16)
    who = rng.integers(0, 12, 40)
    probes = sc.normalise(rows[rng.integers(0, 40, 30)] + 0.3 * rng.normal(size=(30, 16)))
    r = sc.nearest_two(rows, who, probes, chunk=7)  # several chunks
    for i, probe in enumerate(probes):
        (p1, d1), (p2, d2) = brute_nearest_two(rows, who, probe)
        assert r.person1[i] == p1 and np.isclose(r.d1[i], d1, atol=1e-5)
        assert r.person2[i] == p2 and np.isclose(r.d2[i], d2, atol=1e-5)
        assert r.person2[i] != r.person1[i] and r.d1[i] <= r.d2[i]


def test_nearest_two_with_one_person_has_no_runner_up():
    rng = np.random.default_rng(4)
    r = sc.nearest_two(unit(rng, 3, 8), ["ann"] * 3, unit(rng, 2, 8))
    assert r.person1.tolist() == ["ann", "ann"] and np.isinf(r.d2).all()


def test_accept_rule():
    assert sc.accept(0.9, 1.2, threshold=1.0)
    assert not sc.accept(1.1, 2.0, threshold=1.0)
    # Ratio: d1 <= ratio * d2.
    assert sc.accept(0.9, 1.0, threshold=1.0, ratio=0.9)
    assert not sc.accept(0.9, 0.99, threshold=1.0, ratio=0.9)
    # Margin: d2 - d1 >= margin.
    assert sc.accept(0.9, 1.0, threshold=1.0, margin=0.1 - 1e-9)
    assert not sc.accept(0.9, 0.95, threshold=1.0, margin=0.1)
    # Nobody else enrolled: the runner-up tests pass.
    for d2 in (None, np.inf, np.nan):
        assert sc.accept(0.9, d2, threshold=1.0, ratio=0.5, margin=0.5)
    out = sc.accept(np.array([0.5, 0.9, 1.1]), np.array([1.0, 0.95, 2.0]), threshold=1.0, ratio=0.9)
    assert out.dtype == bool and out.tolist() == [True, False, False]
    rule = sc.Rule(1.0, ratio=0.9)
    assert rule.accept(0.5, 1.0) and "d1/d2 <= 0.90" in rule.describe()


def test_threshold_at_far_is_the_protocol_quantile_without_extra_tests():
    rng = np.random.default_rng(5)
    d1 = rng.uniform(0.8, 1.4, 2000)
    assert sc.threshold_at_far(d1, far=0.01) == pytest.approx(np.quantile(d1, 0.01))
    # A ratio nobody fails changes nothing.
    d2 = d1 + 0.1
    assert sc.threshold_at_far(d1, d2, 0.01, ratio=10.0) == pytest.approx(np.quantile(d1, 0.01))


def test_threshold_at_far_holds_the_strangers_to_far_with_a_ratio():
    rng = np.random.default_rng(6)
    d1 = rng.uniform(0.8, 1.4, 5000)
    d2 = d1 / rng.uniform(0.8, 1.0, 5000)  # half of them fail ratio 0.9
    t = sc.threshold_at_far(d1, d2, 0.01, ratio=0.9)
    assert t > np.quantile(d1, 0.01)  # the ratio test lets the threshold loosen
    assert sc.accept_rate(sc.Rule(t, ratio=0.9), d1, d2) == pytest.approx(0.01, abs=0.0005)
    # Fewer than 1% pass the ratio test at all: any threshold keeps FAR under 1%.
    assert np.isinf(sc.threshold_at_far(d1, d2, 0.01, ratio=0.5))


def synthetic_protocol(rng, n=4000):
    """Strangers: nearest and runner-up nearly tied. Genuine: closer, with a
    clear gap to the runner-up, overlapping the strangers in d1 alone."""
    sd1 = rng.normal(1.15, 0.07, n)
    sd2 = sd1 + np.abs(rng.normal(0.02, 0.02, n))
    gd1 = rng.normal(0.9, 0.12, n)
    gd2 = np.maximum(gd1 + rng.normal(0.3, 0.08, n), gd1)
    correct = rng.random(n) < 0.98
    return sd1, sd2, correct, gd1, gd2


def test_choose_rule_ratio_beats_plain_when_the_runner_up_separates():
    rng = np.random.default_rng(7)
    sd1, sd2, correct, gd1, gd2 = synthetic_protocol(rng)
    plain = sc.choose_rule(sd1, sd2, correct, gd1, gd2, far=0.01, kind="plain")
    assert plain.ratio is None and plain.threshold == pytest.approx(np.quantile(sd1, 0.01))
    ratio = sc.choose_rule(sd1, sd2, correct, gd1, gd2, far=0.01, kind="ratio")
    margin = sc.choose_rule(sd1, sd2, correct, gd1, gd2, far=0.01, kind="margin")
    assert ratio.ratio is not None and margin.margin is not None
    ga = {r: sc.accept_rate(r, gd1, gd2, correct) for r in (plain, ratio, margin)}
    assert ga[ratio] > ga[plain] + 0.05 and ga[margin] > ga[plain] + 0.05
    for r in (ratio, margin):  # still about 1% of the strangers
        assert sc.accept_rate(r, sd1, sd2) <= 0.011


def test_choose_rule_ties_keep_the_loosest_ratio():
    # Runner-ups far away: every ratio of the grid accepts the same.
    d1 = np.linspace(0.5, 1.5, 1000)
    d2 = np.full(1000, 100.0)
    rule = sc.choose_rule(d1, d2, np.ones(1000, bool), d1, d2, far=0.01, kind="ratio", grid=[0.6, 0.8, 0.95])
    assert rule.ratio == 0.95
    with pytest.raises(ValueError):
        sc.choose_rule(d1, d2, np.ones(1000, bool), d1, d2, kind="score")


def test_choose_rule_cap_keeps_a_distance_ceiling():
    rng = np.random.default_rng(8)
    sd1, sd2, correct, gd1, gd2 = synthetic_protocol(rng)
    free = sc.choose_rule(sd1, sd2, correct, gd1, gd2, far=0.001, kind="ratio")
    cap = sc.threshold_at_far(sd1, far=0.01)
    capped = sc.choose_rule(sd1, sd2, correct, gd1, gd2, far=0.001, kind="ratio", cap=cap)
    assert free.threshold > cap and capped.threshold <= cap
    # With nobody else enrolled, the capped rule still refuses a far face.
    assert sc.accept(1.9, None, free.threshold, free.ratio) and not capped.accept(1.9, None)
