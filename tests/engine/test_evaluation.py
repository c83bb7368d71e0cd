from pathlib import Path

import numpy as np

from recognition.engine import evaluation as ev

LFW = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "lfw"


def brute_best_accuracy(dist, same):
    return max(np.mean((dist <= t) == same) for t in np.concatenate([[-1.0], dist]))


def test_best_threshold_matches_brute_force():
    rng = np.random.default_rng(0)
    same = rng.random(300) < 0.5
    dist = np.where(same, rng.normal(0.8, 0.2, 300), rng.normal(1.3, 0.2, 300))
    t = ev.best_threshold(dist, same)
    assert np.isclose(ev.accuracy_at(dist, same, t), brute_best_accuracy(dist, same))


def test_kfold_on_separable_data_is_perfect_and_on_noise_near_chance():
    rng = np.random.default_rng(1)
    same = np.repeat([True, False], 300)
    fold = np.arange(600) % 10
    sep = np.where(same, 0.5, 1.5) + rng.normal(0, 0.01, 600)
    assert ev.kfold_accuracy(sep, same, fold)["accuracy_mean"] == 1.0
    noise = rng.random(600)
    assert abs(ev.kfold_accuracy(noise, same, fold)["accuracy_mean"] - 0.5) < 0.1


def test_roc_auc_extremes():
    same = np.array([True, True, False, False])
    assert ev.roc_curve(np.array([0.1, 0.2, 0.8, 0.9]), same)[2] == 1.0
    assert ev.roc_curve(np.array([0.9, 0.8, 0.2, 0.1]), same)[2] == 0.0


def test_read_pairs_view2_and_view1_headers():
    p2 = ev.read_pairs(LFW / "pairs.txt", LFW)
    assert len(p2) == 6000 and p2.same.sum() == 3000 and set(p2.fold) == set(range(10))
    assert p2.same[:300].all() and not p2.same[300:600].any()
    assert all(p.is_file() for p in p2.left[:20] + p2.right[-20:])
    p1 = ev.read_pairs(LFW / "pairsDevTest.txt", LFW)
    assert len(p1) == 1000 and p1.same.sum() == 500 and set(p1.fold) == {0}


def test_identification_split_is_disjoint():
    gallery, genuine, sa, sb = ev.identification_split(LFW)
    people = lambda paths: {p.parent.name for p in paths}  # noqa: E731
    assert len(gallery) == len(genuine) == 1680
    assert people(gallery) == people(genuine)
    assert not (people(sa) | people(sb)) & people(gallery)
    assert not people(sa) & people(sb) and len(sa) + len(sb) == 5749 - 1680
