import numpy as np

from recognition.engine.gallery import UNKNOWN, compare_faces, identify, nearest_name


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


GALLERY = np.stack([unit([1, 0, 0]), unit([0, 1, 0]), unit([0.9, 0.1, 0]), unit([0, 0, 1])])
NAMES = ["ann", "bob", "ann", "cy"]


def test_compare_faces_like_the_seed():
    matches, d = compare_faces(GALLERY, unit([1, 0.05, 0]), threshold=0.2)
    assert matches == [True, False, True, False]
    np.testing.assert_allclose(d, np.linalg.norm(GALLERY - unit([1, 0.05, 0]), axis=1), rtol=1e-6)


def test_nearest_name_or_unknown():
    assert nearest_name(GALLERY, NAMES, unit([0.05, 1, 0]), 0.3) == "bob"
    assert nearest_name(GALLERY, NAMES, unit([1, 1, 1]), 0.3) == UNKNOWN
    assert nearest_name(GALLERY[:0], [], unit([1, 1, 1]), 0.3) == UNKNOWN


def test_identify_uses_min_over_a_persons_embeddings_and_other_runner_up():
    probe = unit([0.95, 0.08, 0])
    ident = identify(GALLERY, NAMES, probe, threshold=0.5)
    assert ident.name == "ann" and ident.matched
    assert np.isclose(ident.distance, np.linalg.norm(GALLERY[2] - probe), atol=1e-6)
    # The runner-up is the nearest *other* person, never ann's second photo.
    assert ident.runner_up == "bob"
    assert np.isclose(ident.runner_up_distance, np.linalg.norm(GALLERY[1] - probe), atol=1e-6)


def test_identify_over_threshold_is_unknown_but_keeps_the_nearest():
    ident = identify(GALLERY, NAMES, unit([0.5, 0.5, 0.7]), threshold=0.1)
    assert ident.name == UNKNOWN and ident.nearest in {"ann", "bob", "cy"} and not ident.matched
