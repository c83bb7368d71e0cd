
import numpy as np
import pytest

from recognition.engine import evaluation as ev

from .conftest import LFW, needs_lfw


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


@needs_lfw
def test_read_pairs_view2_and_view1_headers():
    p2 = ev.read_pairs(LFW / "pairs.txt", LFW)
    assert len(p2) == 6000 and p2.same.sum() == 3000 and set(p2.fold) == set(range(10))
    assert p2.same[:300].all() and not p2.same[300:600].any()
    assert all(p.is_file() for p in p2.left[:20] + p2.right[-20:])
    p1 = ev.read_pairs(LFW / "pairsDevTest.txt", LFW)
    assert len(p1) == 1000 and p1.same.sum() == 500 and set(p1.fold) == {0}


@needs_lfw
def test_identification_split_is_disjoint():
    gallery, genuine, sa, sb = ev.identification_split(LFW)
    people = lambda paths: {p.parent.name for p in paths}  # noqa: E731
    assert len(gallery) == len(genuine) == 1680
    assert people(gallery) == people(genuine)
    assert not (people(sa) | people(sb)) & people(gallery)
    assert not people(sa) & people(sb) and len(sa) + len(sb) == 5749 - 1680


# ------------------------------------------------ identification options (issue 11)


class FakePipeline:
    """No network: an 'embedding' is the column profile of the image, so the
    mirrored crop gives a different vector. Counts what it embeds."""

    embedder_name, embedder_version = "fake", "1"
    template = np.zeros((5, 2))

    def __init__(self):
        self.embedded = 0

    def align(self, image, landmarks):
        return image[:8, :128]

    def embed_crops(self, crops):
        self.embedded += len(crops)
        v = np.stack([c.astype(np.float32).mean(axis=(0, 2)) + np.arange(128) for c in crops])
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def fake_images(tmp_path, n):
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (16, 128, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def fake_detected(paths):
    return ev.DetectedSet(list(paths), np.zeros((len(paths), 5, 2), np.float32), np.ones(len(paths), bool), 0)


def test_embedding_cache_reuses_supersets_and_builds_flip_from_plain_and_mirror(tmp_path):
    from recognition.engine.scoring import flip_average

    paths = fake_images(tmp_path, 6)
    cache = tmp_path / "cache"
    pipe = FakePipeline()
    plain = ev.cached_embeddings(pipe, fake_detected(paths), False, cache, progress=False)
    assert pipe.embedded == 6
    # A subset, in another order: read from the superset file, nothing embedded.
    sub = [paths[4], paths[1]]
    again = ev.cached_embeddings(pipe, fake_detected(sub), "plain", cache, progress=False)
    assert pipe.embedded == 6 and np.array_equal(again.vectors, plain.vectors[[4, 1]])
    # Flip TTA on the subset: the plain half comes from the cache, only the mirrors are embedded.
    flip = ev.cached_embeddings(pipe, fake_detected(sub), True, cache, progress=False)
    assert pipe.embedded == 8
    direct = ev.embed_detected(FakePipeline(), fake_detected(sub), flip=True, progress=False)
    assert np.allclose(flip.vectors, direct.vectors, atol=1e-6)
    mirror = ev.embed_mirrored(FakePipeline(), fake_detected(sub), progress=False)
    assert np.allclose(flip.vectors, flip_average(plain.vectors[[4, 1]], mirror.vectors), atol=1e-6)
    # Another model never reuses these files.
    other = FakePipeline()
    other.embedder_version = "2"
    ev.cached_embeddings(other, fake_detected(sub), False, cache, progress=False)
    assert other.embedded == 2


@needs_lfw
def test_enrolment_split_keeps_the_probe_out_of_the_gallery():
    gallery, genuine, sa, sb = ev.identification_split(LFW)
    one, people1 = ev.enrolment_split(LFW, 1)
    assert one == gallery and people1 == [p.parent.name for p in gallery]
    three, people3 = ev.enrolment_split(LFW, 3)
    assert len(three) == 3191 and len(set(people3)) == 1680
    assert not set(three) & set(genuine) and set(gallery) <= set(three)
    assert max(people3.count(p) for p in set(people3)) == 3
    # Everybody with three enrolment photos: the 610 people with at least four photos.
    uniform, people_u = ev.enrolment_split(LFW, 3, min_photos=4)
    assert len(set(people_u)) == 610 and len(uniform) == 3 * 610
    # The stranger halves use the same hash as the genuine halves.
    assert {ev.name_half(p.parent.name) for p in sa} == {0} and {ev.name_half(p.parent.name) for p in sb} == {1}


def synthetic_lfw_embeddings(seed=0):
    """Unit vectors for every image of the options protocol (K <= 3): a
    person's photos scatter around their own direction."""
    rng = np.random.default_rng(seed)
    paths = ev.options_images(LFW, 3)
    centre = {}
    vectors = np.zeros((len(paths), 128), np.float32)
    for i, p in enumerate(paths):
        name = p.parent.name
        if name not in centre:
            centre[name] = rng.normal(size=128)
            centre[name] /= np.linalg.norm(centre[name])
        v = centre[name] + rng.normal(scale=0.09, size=128)
        vectors[i] = v / np.linalg.norm(v)
    return ev.EmbeddedSet(paths, vectors, [], 0)


@needs_lfw
def test_options_with_one_photo_reproduce_the_identification_protocol():
    emb = synthetic_lfw_embeddings()
    base = ev.identification_report(emb, LFW, far=0.01)
    scores = ev.identification_scores(emb, emb, LFW, enrol=1, mode="photos")
    r = ev.option_report(scores, far=0.01, kind="plain")
    assert r["threshold"] == pytest.approx(base["threshold"], abs=1e-5)
    assert r["far_check"] == pytest.approx(base["far_check"])
    assert r["genuine_accept_all"] == pytest.approx(base["genuine_accept_rate"])
    assert r["rank1_all"] == pytest.approx(base["rank1_accuracy"])
    assert r["gallery_rows"] == 1680 and r["genuine_probes_check"] + (scores.genuine_half == 0).sum() == 1680
    # More enrolment photos: more rows, and the mean template adds one row per person with several.
    s3 = ev.identification_scores(emb, emb, LFW, enrol=3, mode="photos+mean")
    assert s3.gallery_rows == 3191 + 901
    # A uniform gallery: only its people's genuine probes are scored.
    su = ev.identification_scores(emb, emb, LFW, enrol=3, mode="mean", min_photos=4)
    assert su.gallery_rows == 610 and len(su.genuine_correct) == 610


@needs_lfw
def test_option_rules_are_chosen_without_the_check_set():
    emb = synthetic_lfw_embeddings(1)
    scores = ev.identification_scores(emb, emb, LFW, enrol=1)
    before = ev.option_report(scores, far=0.01, kind="ratio")
    # Scramble everything of the check set: the chosen rule must not move.
    check = scores.genuine_half == 1
    scores.genuine.d1[check] = 0.0
    scores.genuine_correct[check] = False
    scores.strangers_b.d1[:] = 0.0
    after = ev.option_report(scores, far=0.01, kind="ratio")
    assert (after["threshold"], after["ratio"]) == (before["threshold"], before["ratio"])
    assert after["far_check"] == 1.0 and after["genuine_accept_check"] == 0.0
