"""Anchors, box/landmark coding, NMS and the batched RetinaFace detector."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from recognition.engine.detector import (
    RetinaFaceDetector,
    box_iou,
    decode_boxes,
    decode_landmarks,
    encode_boxes,
    encode_landmarks,
    nms,
    prior_boxes,
)
from recognition.engine.retinaface import RetinaFace, fuse_batchnorm

torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED_PTH = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "retinaface_mobilenet0.25.pth"
LFW = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "lfw" / "images"


# ---------------------------------------------------------------- anchors


def test_prior_boxes_640x480_by_hand():
    p = prior_boxes(480, 640)
    # (60*80 + 30*40 + 15*20) locations x 2 anchors
    assert p.shape == (12600, 4)
    want_first = [
        [0.5 * 8 / 640, 0.5 * 8 / 480, 16 / 640, 16 / 480],
        [0.5 * 8 / 640, 0.5 * 8 / 480, 32 / 640, 32 / 480],
    ]
    torch.testing.assert_close(p[:2], torch.tensor(want_first))
    # Row-major: the next location is one step to the right.
    torch.testing.assert_close(p[2], torch.tensor([1.5 * 8 / 640, 0.5 * 8 / 480, 16 / 640, 16 / 480]))
    # Second row starts after 80 locations.
    torch.testing.assert_close(p[160], torch.tensor([0.5 * 8 / 640, 1.5 * 8 / 480, 16 / 640, 16 / 480]))
    # Level 2 starts at 9600 with 64-px anchors on a 16-px grid.
    torch.testing.assert_close(p[9600], torch.tensor([0.5 * 16 / 640, 0.5 * 16 / 480, 64 / 640, 64 / 480]))
    # Last anchor: level 3, row 14, column 19, 512 px.
    torch.testing.assert_close(p[-1], torch.tensor([19.5 * 32 / 640, 14.5 * 32 / 480, 512 / 640, 512 / 480]))
    assert p[-1, 3] > 1  # unclipped
    assert prior_boxes(480, 640, clip=True)[-1, 3] == 1.0


@pytest.mark.parametrize("hw", [(250, 250), (97, 131), (33, 200)])
def test_prior_count_matches_network_output(hw):
    h, w = hw
    want = sum(math.ceil(h / s) * math.ceil(w / s) * 2 for s in (8, 16, 32))
    assert prior_boxes(h, w).shape == (want, 4)
    with torch.inference_mode():
        loc, conf, landms = RetinaFace().eval()(torch.zeros(1, 3, h, w))
    assert loc.shape[1] == conf.shape[1] == landms.shape[1] == want


# ---------------------------------------------------------------- coding


def _random_priors(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.cat([torch.rand(n, 2, generator=g), 0.02 + 0.5 * torch.rand(n, 2, generator=g)], 1)


def test_box_encode_decode_round_trip():
    g = torch.Generator().manual_seed(0)
    priors = _random_priors(500, g)
    xy = torch.rand(500, 2, generator=g)
    boxes = torch.cat([xy, xy + 0.01 + 0.6 * torch.rand(500, 2, generator=g)], 1)
    torch.testing.assert_close(decode_boxes(encode_boxes(boxes, priors), priors), boxes, atol=1e-5, rtol=0)
    loc = torch.randn(3, 500, 4, generator=g)  # batched
    torch.testing.assert_close(encode_boxes(decode_boxes(loc, priors), priors), loc, atol=1e-4, rtol=0)
    # Zero offsets decode to the anchor itself.
    corners = torch.cat([priors[:, :2] - priors[:, 2:] / 2, priors[:, :2] + priors[:, 2:] / 2], 1)
    torch.testing.assert_close(decode_boxes(torch.zeros(500, 4), priors), corners)


def test_landmark_encode_decode_round_trip():
    g = torch.Generator().manual_seed(1)
    priors = _random_priors(400, g)
    pts = torch.rand(400, 10, generator=g)
    torch.testing.assert_close(decode_landmarks(encode_landmarks(pts, priors), priors), pts, atol=1e-5, rtol=0)
    pre = torch.randn(2, 400, 10, generator=g)
    torch.testing.assert_close(encode_landmarks(decode_landmarks(pre, priors), priors), pre, atol=1e-4, rtol=0)
    # Hand check: x uses the prior width, y the prior height, variance 0.1.
    p = torch.tensor([[0.5, 0.5, 0.2, 0.4]])
    out = decode_landmarks(torch.tensor([[1.0, 1.0] * 5]), p)
    torch.testing.assert_close(out, torch.tensor([[0.52, 0.54] * 5]))


# ---------------------------------------------------------------- NMS


def _iou_py(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _nms_py(boxes: list, scores: list, thr: float) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep: list[int] = []
    for i in order:
        if all(_iou_py(boxes[i], boxes[k]) <= thr for k in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed,thr", [(0, 0.4), (1, 0.3), (2, 0.5), (3, 0.7), (4, 0.0), (5, 1.0)])
def test_nms_matches_brute_force(seed, thr):
    rng = np.random.default_rng(seed)
    n = 300
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(5, 80, (n, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    got = nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr).tolist()
    want = _nms_py(boxes.astype(np.float64).tolist(), scores.tolist(), thr)
    assert got == want
    assert 0 < len(got) <= n
    assert len(got) == n if thr == 1.0 else len(got) < n


def test_box_iou_and_nms_edge_cases():
    a = torch.tensor([[0.0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 20, 30]])
    iou = box_iou(a, a)
    assert iou[0, 1].item() == pytest.approx(25 / 175)
    assert iou[2, 2].item() == 0.0  # degenerate box: no division by zero
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.4).numel() == 0
    # Identical boxes: the higher score survives.
    kept = nms(torch.tensor([[0.0, 0, 10, 10]] * 3), torch.tensor([0.2, 0.9, 0.5]), 0.4)
    assert kept.tolist() == [1]


# ---------------------------------------------------------------- detector


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def detector() -> RetinaFaceDetector:
    if not SHARED_PTH.is_file():
        pytest.skip(f"reference weights not found at {SHARED_PTH}")
    sd = torch.load(SHARED_PTH, map_location="cpu", weights_only=True)
    return RetinaFaceDetector.from_state_dict(sd)


@pytest.fixture(scope="module")
def lfw_pair() -> tuple[np.ndarray, np.ndarray]:
    paths = [LFW / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg", LFW / "AJ_Cook" / "AJ_Cook_0001.jpg"]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"LFW images not found under {LFW}")
    return _rgb(paths[0]), _rgb(paths[1])


def _assert_same(a, b, px: float, score: float) -> None:
    assert len(a) == len(b)
    np.testing.assert_allclose(a.scores, b.scores, atol=score, rtol=0)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=px, rtol=0)
    np.testing.assert_allclose(a.landmarks, b.landmarks, atol=px, rtol=0)


def test_batched_equals_one_by_one(detector, lfw_pair):
    a, b = lfw_pair
    canvas = np.full((500, 700, 3), 90, np.uint8)  # larger than max_side: downscaled
    canvas[10:260, 10:260] = a
    canvas[200:450, 400:650] = b
    images = [canvas, a, cv2.resize(b, (180, 300)), np.ascontiguousarray(b[:, :200]), np.zeros((0, 5, 3), np.uint8)]
    one = [detector.detect([im])[0] for im in images]
    batch = detector.detect(images)
    assert [len(d) for d in one] == [2, 1, 1, 1, 0]
    # The largest image sets the batch size and is not padded: identical up to float noise.
    _assert_same(one[0], batch[0], px=1e-3, score=1e-5)
    # Padded images see the (zero) padding instead of conv zero-padding beyond their border a few
    # layers deep, so their outputs move slightly: within a pixel and a score of 1e-2.
    for o, q in zip(one[1:], batch[1:], strict=True):
        _assert_same(o, q, px=1.5, score=1e-2)


def test_coordinates_are_in_original_pixels(detector, lfw_pair):
    a, _ = lfw_pair
    crop = np.ascontiguousarray(a[:, 20:220])  # 250x200, non-square
    small = detector.detect([crop])[0]
    assert len(small) == 1
    # A 2x nearest upscale, shrunk back by INTER_AREA to max_side, is the same pixels: exactly 2x.
    big = cv2.resize(crop, (400, 500), interpolation=cv2.INTER_NEAREST)
    large = RetinaFaceDetector(detector.model, max_side=250).detect([big])[0]
    np.testing.assert_allclose(large.boxes, small.boxes * 2, atol=1e-3)
    np.testing.assert_allclose(large.landmarks, small.landmarks * 2, atol=1e-3)
    # Odd size: 1001x701 -> 640x448, so x and y scale back by different factors.
    odd = cv2.resize(a, (1001, 701), interpolation=cv2.INTER_CUBIC)
    got = detector.detect([odd])[0]
    ref = detector.detect([cv2.resize(odd, (640, 448), interpolation=cv2.INTER_AREA)])[0]
    assert len(got) == len(ref) == 1
    sx, sy = 1001 / 640, 701 / 448
    np.testing.assert_allclose(got.boxes, ref.boxes * [sx, sy, sx, sy], atol=1e-3)
    np.testing.assert_allclose(got.landmarks, ref.landmarks * [sx, sy], atol=1e-3)


def test_detections_sorted_and_typed(detector, lfw_pair):
    a, b = lfw_pair
    canvas = np.full((300, 600, 3), 128, np.uint8)
    canvas[25:275, 0:250] = a
    canvas[25:275, 320:570] = cv2.GaussianBlur(b, (7, 7), 3)
    d = detector.detect([canvas])[0]
    assert len(d) == 2
    assert d.boxes.dtype == d.scores.dtype == d.landmarks.dtype == np.float32
    assert d.boxes.shape == (2, 4) and d.landmarks.shape == (2, 5, 2)
    assert np.all(np.diff(d.scores) <= 0)


def test_no_face_and_bad_inputs(detector):
    grey = np.full((240, 320, 3), 128, np.uint8)
    assert len(detector.detect([grey])[0]) == 0
    assert detector.detect([]) == []
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect([np.zeros((10, 10), np.uint8)])
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect([np.zeros((10, 10, 3), np.float32)])
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect([np.zeros((10, 10, 4), np.uint8)])


def test_detector_settings_and_prior_cache():
    model = RetinaFace().train()
    det = RetinaFaceDetector(model, fp16=True, score_threshold=0.99)
    assert not det.fp16 and det.dtype == torch.float32  # fp16 is CUDA-only
    first = det.priors(48, 64)
    assert det.priors(48, 64) is first
    for k in range(det.PRIOR_CACHE_SIZE + 1):
        det.priors(32, 32 + k)
    assert len(det._priors) == det.PRIOR_CACHE_SIZE and (48, 64) not in det._priors
    out = det.detect([np.zeros((37, 53, 3), np.uint8), np.zeros((64, 20, 3), np.uint8)])
    assert [type(d).__name__ for d in out] == ["Detections"] * 2
    assert model.training  # the caller's model is left alone


def test_fused_inference_net_matches_the_model():
    torch.manual_seed(0)
    model = RetinaFace()
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding has work to do
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    model.eval()
    fused = fuse_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(2, 3, 64, 96) * 50
    with torch.inference_mode():
        for a, b in zip(model(x), fused(x), strict=True):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_detector_follows_weight_changes(detector, lfw_pair):
    a, _ = lfw_pair
    model = RetinaFace()
    det = RetinaFaceDetector(model)
    assert len(det.detect([a])[0]) == 0  # random weights: nothing above 0.6
    model.load_state_dict(detector.model.state_dict())  # in-place copy into the same tensors
    found = det.detect([a])[0]
    assert len(found) == 1
    np.testing.assert_allclose(found.boxes, detector.detect([a])[0].boxes, atol=1e-3)
    with torch.no_grad():
        for head in model.ClassHead:  # an optimiser-style in-place update: face logits way down
            head.conv1x1.bias[1::2] -= 50.0
    assert len(det.detect([a])[0]) == 0


def test_thresholds_are_applied(detector, lfw_pair):
    a, _ = lfw_pair
    rng = np.random.default_rng(0)
    noisy = np.clip(a.astype(np.int16) + rng.integers(-60, 60, a.shape), 0, 255).astype(np.uint8)
    low = RetinaFaceDetector(detector.model, score_threshold=0.02, nms_threshold=0.4).detect([noisy])[0]
    assert low.scores.min() > 0.02
    iou = box_iou(torch.from_numpy(low.boxes), torch.from_numpy(low.boxes)).numpy()
    for i, j in itertools.combinations(range(len(low)), 2):
        assert iou[i, j] <= 0.4
