import cv2
import numpy as np
import pytest

from recognition.engine.align import (
    eye_line_align,
    eye_line_angle,
    letterbox,
    rotate_to_eye_line,
    similarity_align,
    template,
    transform_points,
    umeyama,
)


def random_similarity(rng):
    angle, scale = rng.uniform(-40, 40), rng.uniform(0.5, 3.0)
    m = cv2.getRotationMatrix2D((rng.uniform(50, 200), rng.uniform(50, 200)), angle, scale)
    m[:, 2] += rng.uniform(-30, 30, 2)
    return m


def test_umeyama_recovers_exact_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (5, 2))
    m = random_similarity(rng)
    dst = transform_points(src, m)
    np.testing.assert_allclose(umeyama(src, dst), m, atol=1e-3)


@pytest.mark.parametrize("size,scale", [(112, 1.0), (160, 0.8)])
def test_similarity_align_maps_landmarks_onto_template_within_1px(size, scale):
    rng = np.random.default_rng(1)
    dst = template(size, scale)
    # Landmarks of a tilted, shifted, scaled face in a bigger photo.
    m = random_similarity(rng)
    inverse = cv2.invertAffineTransform(m)
    landmarks = transform_points(dst, inverse)
    image = rng.integers(0, 255, (400, 400, 3), dtype=np.uint8)
    crop, matrix = similarity_align(image, landmarks, size, dst)
    assert crop.shape == (size, size, 3)
    assert np.abs(transform_points(landmarks, matrix) - dst).max() < 1.0


def test_similarity_align_moves_real_pixels():
    # A white dot at each landmark must end up at each template point.
    image = np.zeros((300, 300, 3), np.uint8)
    landmarks = np.array([[120, 130], [180, 125], [152, 165], [128, 200], [176, 196]], np.float32)
    for x, y in landmarks:
        cv2.circle(image, (int(x), int(y)), 2, (255, 255, 255), -1)
    crop, matrix = similarity_align(image, landmarks, 112)
    for x, y in transform_points(landmarks, matrix):
        assert crop[int(round(y)), int(round(x))].max() > 100


@pytest.mark.parametrize("n", [5, 68])
def test_eye_line_rotation_levels_the_eyes_and_maps_landmarks(n):
    rng = np.random.default_rng(2)
    pts = rng.uniform(80, 220, (n, 2)).astype(np.float32)
    if n == 5:
        pts[0], pts[1] = (100, 120), (180, 150)
    else:
        pts[36:42] = (100, 120)
        pts[42:48] = (180, 150)
    assert abs(eye_line_angle(pts) - np.degrees(np.arctan2(30, 80))) < 1e-4
    image = np.zeros((300, 300, 3), np.uint8)
    rotated, mapped = rotate_to_eye_line(image, pts)
    assert rotated.shape == image.shape and mapped.shape == (n, 2)
    assert abs(eye_line_angle(mapped)) < 1e-3


def test_eye_line_angle_rejects_other_landmark_counts():
    with pytest.raises(ValueError):
        eye_line_angle(np.zeros((7, 2)))


def test_letterbox_pads_evenly_with_grey():
    img = np.full((50, 100, 3), 255, np.uint8)
    out = letterbox(img, 160)
    assert out.shape == (160, 160, 3)
    assert (out[:40] == 128).all() and (out[-40:] == 128).all()
    assert (out[40:120] == 255).all()


def test_eye_line_align_gives_square_crop():
    img = np.random.default_rng(3).integers(0, 255, (250, 250, 3), dtype=np.uint8)
    lm = np.array([[100, 110], [150, 115], [125, 140], [105, 165], [145, 168]], np.float32)
    out = eye_line_align(img, np.array([80, 80, 170, 190]), lm, size=160)
    assert out.shape == (160, 160, 3)
