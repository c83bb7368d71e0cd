"""Detection policies: the standard default is unchanged, small_faces finds small faces in full-HD
frames without inventing faces in close ones, and the merging of the two passes."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from recognition.engine import registry
from recognition.engine.detection_policy import CLOSE, PRESETS, SMALL_FACES, STANDARD, DetectionPolicy
from recognition.engine.detector import RetinaFaceDetector, box_iou, merge_detections, merge_passes
from recognition.engine.types import Detections

from .conftest import lfw_image, needs_weights


@pytest.fixture(autouse=True)
def one_thread():
    # One thread: on a busy shared machine two threads spin against other processes (10x slower).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- the policy object


def test_presets_and_defaults():
    assert DetectionPolicy() == STANDARD and STANDARD.min_face_px is None
    assert PRESETS == {"standard": STANDARD, "small_faces": SMALL_FACES, "close": CLOSE}
    assert CLOSE.max_side == 320 and CLOSE.min_face_px is None and STANDARD.max_side is None
    assert SMALL_FACES.min_face_px == 32 and SMALL_FACES.face_px_at_net == 32
    with pytest.raises(dataclasses.FrozenInstanceError):
        SMALL_FACES.min_face_px = 10  # type: ignore[misc]
    assert len({STANDARD, SMALL_FACES, DetectionPolicy(name="small_faces", min_face_px=32.0)}) == 2  # hashable


def test_parse_and_round_trip():
    assert DetectionPolicy.parse(None) is STANDARD
    assert DetectionPolicy.parse("small_faces") is SMALL_FACES
    assert DetectionPolicy.parse(SMALL_FACES) is SMALL_FACES
    assert DetectionPolicy.parse({"name": "small_faces"}) is SMALL_FACES
    custom = DetectionPolicy(name="gate", min_face_px=40, face_px_at_net=28, max_fine_side=2560)
    assert DetectionPolicy.parse(custom.as_dict()) == custom
    assert DetectionPolicy.parse(SMALL_FACES.as_dict()) == SMALL_FACES
    with pytest.raises(ValueError, match="unknown detection policy 'tiny'"):
        DetectionPolicy.parse("tiny")
    with pytest.raises(ValueError, match="unknown detection policy fields: min_face"):
        DetectionPolicy.parse({"name": "x", "min_face": 20})
    with pytest.raises(TypeError):
        DetectionPolicy.parse(32)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"min_face_px": 0},
        {"min_face_px": float("nan")},
        {"face_px_at_net": -1},
        {"max_fine_side": 0},
        {"max_upscale": 0.5},
        {"handoff_px": 0},
        {"max_side": 16},
        {"max_side": 320.5},
    ],
)
def test_invalid_fields(fields):
    with pytest.raises(ValueError):
        DetectionPolicy(**fields)


@pytest.mark.parametrize(
    "policy,hw,want",
    [
        (STANDARD, (1080, 1920), None),  # no fine pass, ever
        (SMALL_FACES, (480, 640), None),  # the door path: coarse is already full resolution
        (SMALL_FACES, (600, 600), None),
        (SMALL_FACES, (720, 1280), 1.0),
        (SMALL_FACES, (1080, 1920), 1.0),
        (SMALL_FACES, (2160, 3840), 1.0),
        (SMALL_FACES, (4320, 7680), 0.5),  # capped by max_fine_side
        (DetectionPolicy(name="p", min_face_px=32, face_px_at_net=24), (1080, 1920), 0.75),
        (DetectionPolicy(name="p", min_face_px=80), (1080, 1920), 0.4),
        (DetectionPolicy(name="p", min_face_px=100), (1080, 1920), None),  # 0.32 < coarse 1/3
        (DetectionPolicy(name="p", min_face_px=80), (700, 1000), None),  # 0.4 < coarse 0.64
        (DetectionPolicy(name="p", min_face_px=16, max_upscale=2.0), (480, 640), 2.0),
        (DetectionPolicy(name="p", min_face_px=16, max_upscale=2.0, max_fine_side=960), (480, 640), 1.5),
    ],
)
def test_fine_scale(policy, hw, want):
    got = policy.fine_scale(*hw, max_side=640)
    assert got == pytest.approx(want) if want is not None else got is None


# ---------------------------------------------------------------- merging the passes


def dets(boxes, scores) -> Detections:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    return Detections(
        boxes=boxes, scores=np.asarray(scores, np.float32), landmarks=np.repeat(centres[:, None], 5, axis=1)
    )


def assert_no_duplicates(d: Detections, iou: float = 0.4) -> None:
    m = box_iou(torch.from_numpy(d.boxes), torch.from_numpy(d.boxes)).numpy()
    np.fill_diagonal(m, 0)
    assert (m <= iou).all(), m


def test_merge_detections_dedups_across_parts_and_keeps_the_best():
    a = dets([[100, 100, 140, 150], [500, 80, 530, 120]], [0.95, 0.7])
    b = dets([[102, 101, 141, 152], [300, 300, 330, 340]], [0.99, 0.8])  # the first is a's first, a bit better
    m = merge_detections([a, b], iou_threshold=0.4)
    assert_no_duplicates(m)
    np.testing.assert_allclose(m.scores, [0.99, 0.8, 0.7])
    np.testing.assert_allclose(m.boxes[0], [102, 101, 141, 152])
    np.testing.assert_allclose(m.landmarks[0, 0], [121.5, 126.5])  # landmarks travel with their box
    assert merge_detections([a, Detections.empty()], 0.4) is a  # one part: untouched
    assert len(merge_detections([Detections.empty(), Detections.empty()], 0.4)) == 0
    assert len(merge_detections([a, b], 0.4, max_detections=2)) == 2


def test_merge_passes_keeps_small_faces_and_drops_parts_of_close_ones():
    close = [600, 150, 1200, 950]  # a face 600 px wide, found by the coarse pass
    coarse = dets([close, [100, 100, 200, 230]], [0.999, 0.9])
    fine = dets(
        [
            [1500, 700, 1540, 752],  # a small face far away: kept
            [102, 99, 201, 231],  # the 100 px face again, seen by both passes: merged, best score kept
            [700, 400, 880, 540],  # an eye and a brow of the close face, inside its box: dropped
            [530, 430, 590, 560],  # its ear, just outside the box: dropped
            [640, 160, 1190, 940],  # the close face itself at high resolution: too wide for the fine pass
            [230, 120, 290, 190],  # a small face next to the 100 px one (not 1.5x wider): kept
        ],
        [0.97, 0.995, 0.98, 0.96, 0.999, 0.9],
    )
    m = merge_passes(coarse, fine, fine_max_width=192, iou_threshold=0.4)
    assert_no_duplicates(m)
    got = {tuple(b) for b in m.boxes.round().astype(int).tolist()}
    assert got == {(600, 150, 1200, 950), (102, 99, 201, 231), (1500, 700, 1540, 752), (230, 120, 290, 190)}
    assert np.all(np.diff(m.scores) <= 0)
    # Without a coarse face to own them, the parts would stay (they are faces as far as the pass knows).
    assert len(merge_passes(Detections.empty(), fine, 192, 0.4)) == 5
    assert merge_passes(coarse, Detections.empty(), 192, 0.4) is coarse


# ---------------------------------------------------------------- real faces (weights + LFW)


@pytest.fixture(scope="module")
def detector() -> RetinaFaceDetector:
    return RetinaFaceDetector.from_state_dict(registry.load_state_dict(registry.DETECTOR))


def lfw_rgb(name: str, n: int) -> np.ndarray:
    path = lfw_image(name, n)
    if not path.is_file():
        pytest.skip(f"LFW not found at {path}")
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def small_face_1080p(detector):
    """A 1920x1080 frame with one LFW face ~40 px wide, and its true box: the detector's box on the
    250x250 photo at full resolution, mapped through the paste."""
    photo = lfw_rgb("Colin_Powell", 1)
    (box,) = detector.detect([photo])[0].boxes
    n = round(250 * 40 / (box[2] - box[0]))
    frame = np.full((1080, 1920, 3), 100, np.uint8)
    x, y = 1300, 700
    frame[y : y + n, x : x + n] = cv2.resize(photo, (n, n), interpolation=cv2.INTER_AREA)
    return frame, box * (n / 250) + [x, y, x, y]


def count_forwards(detector: RetinaFaceDetector):
    calls = []
    handle = detector._inference_net().register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape)))
    return calls, handle


@needs_weights
@pytest.mark.weights
def test_small_faces_finds_a_40px_face_in_full_hd(detector, small_face_1080p):
    frame, truth = small_face_1080p
    assert 38 < truth[2] - truth[0] < 42
    assert len(detector.detect([frame])[0]) == 0  # standard: 13 px at the network, not found
    found = detector.detect([frame], policy="small_faces")[0]
    assert len(found) == 1 and found.scores[0] > 0.9
    assert box_iou(torch.from_numpy(found.boxes), torch.tensor(truth[None], dtype=torch.float32)).item() > 0.8
    x1, y1, x2, y2 = found.boxes[0]
    assert np.all((found.landmarks[0] > [x1, y1]) & (found.landmarks[0] < [x2, y2]))


@needs_weights
@pytest.mark.weights
def test_pipeline_takes_the_policy(sface_pipeline, small_face_1080p):
    frame, truth = small_face_1080p
    assert sface_pipeline.faces([frame], embed=False) == [[]]
    (faces,) = sface_pipeline.faces([frame], detection="small_faces")
    assert len(faces) == 1 and faces[0].embedding.shape == (128,)
    assert 35 < faces[0].quality.size_px < 45
    (det,) = sface_pipeline.detect([frame], detection=SMALL_FACES)
    np.testing.assert_array_equal(det.boxes[0], faces[0].box)


# Measured with the detector before policies existed (commit 9a8ac0f), CPU fp32.
GOLDEN_640 = {
    "boxes": [[90.134, 93.813, 181.133, 221.215], [470.665, 337.231, 531.544, 423.623]],
    "scores": [0.99976, 0.99946],
    "landmarks": [
        [[124.498, 141.704], [165.671, 143.073], [150.646, 162.232], [127.114, 187.715], [159.175, 189.198]],
        [[488.208, 369.749], [517.351, 372.172], [502.086, 386.766], [487.88, 400.15], [512.751, 402.165]],
    ],
}


@needs_weights
@pytest.mark.weights
def test_default_is_unchanged_at_640x480(detector):
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[30:280, 20:270] = lfw_rgb("Colin_Powell", 1)
    frame[300:460, 420:580] = cv2.resize(lfw_rgb("Serena_Williams", 1), (160, 160), interpolation=cv2.INTER_AREA)
    calls, handle = count_forwards(detector)
    try:
        default = detector.detect([frame])[0]
        runs = {p: detector.detect([frame], policy=p)[0] for p in ("standard", "small_faces")}
    finally:
        handle.remove()
    np.testing.assert_allclose(default.boxes, GOLDEN_640["boxes"], atol=0.05)
    np.testing.assert_allclose(default.scores, GOLDEN_640["scores"], atol=1e-4)
    np.testing.assert_allclose(default.landmarks, GOLDEN_640["landmarks"], atol=0.05)
    # Same arrays, same single forward pass at 640x480, whatever the policy: the door path costs the same.
    for d in runs.values():
        for field in ("boxes", "scores", "landmarks"):
            np.testing.assert_array_equal(getattr(d, field), getattr(default, field))
    assert calls == [(1, 3, 480, 640)] * 3


@needs_weights
@pytest.mark.weights
def test_close_face_in_full_hd_is_one_face(detector):
    """At full resolution RetinaFace sees parts of a 600 px face as faces; the merge must drop them."""
    crop = lfw_rgb("Gloria_Macapagal_Arroyo", 1)[40:210, 40:210]
    frame = np.full((1080, 1920, 3), 100, np.uint8)
    frame[:, 420:1500] = cv2.resize(crop, (1080, 1080), interpolation=cv2.INTER_CUBIC)
    standard = detector.detect([frame])[0]
    small = detector.detect([frame], policy=SMALL_FACES)[0]
    naive = RetinaFaceDetector(detector.model, max_side=1920).detect([frame])[0]
    assert len(standard) == 1 and standard.boxes[0, 2] - standard.boxes[0, 0] > 550
    assert len(naive) > 1  # what the merge is there for
    assert len(small) == 1
    np.testing.assert_allclose(small.boxes, standard.boxes, atol=1e-3)


@needs_weights
@pytest.mark.weights
def test_batched_policy_equals_one_by_one_and_no_seam_duplicates(detector, small_face_1080p):
    frame = np.ascontiguousarray(small_face_1080p[0][360:, 600:1880])  # 1280x720, the 40 px face inside
    # A 1000x700 frame with faces of ~100 px: seen by both passes, must come out once each.
    mid = np.full((700, 1000, 3), 120, np.uint8)
    mid[50:300, 40:290] = lfw_rgb("Serena_Williams", 1)
    mid[400:650, 600:850] = lfw_rgb("AJ_Cook", 1)
    small_vga = cv2.resize(lfw_rgb("Aaron_Eckhart", 1), (640, 480))
    images = [frame, mid, small_vga, frame.copy()]
    calls, handle = count_forwards(detector)
    try:
        batch = detector.detect(images, policy="small_faces")
        passes = list(calls)
        detector.FINE_BATCH_PIXELS = 1  # one image per fine forward pass
        chunked = detector.detect(images, policy="small_faces")
    finally:
        handle.remove()
        del detector.FINE_BATCH_PIXELS
    # Coarse pass as one batch, then one fine pass per image size (the two 1280x720 frames together).
    assert passes == [(4, 3, 480, 640), (2, 3, 720, 1280), (1, 3, 700, 1000)]
    one = [detector.detect([im], policy="small_faces")[0] for im in images]
    assert [len(d) for d in one] == [1, 2, 1, 1]
    for o, b, c in zip(one, batch, chunked, strict=True):
        assert len(o) == len(b) == len(c)
        assert_no_duplicates(b)
        # Padding in the shared coarse batch moves outputs slightly (see test_detector).
        np.testing.assert_allclose(b.boxes, o.boxes, atol=1.5)
        np.testing.assert_allclose(c.boxes, b.boxes, atol=1e-3)


@needs_weights
@pytest.mark.weights
def test_close_runs_one_pass_at_320_and_finds_a_door_face_but_not_a_distant_one(detector):
    """The close policy: a quarter of the pixels of the standard pass; a face of 80 px in a 640x480 snapshot is
    found where the standard pass finds it, a 40 px one (20 px at the network) is given up."""
    frame = np.full((480, 640, 3), 90, np.uint8)
    for name, face_px, (x, y) in (("Colin_Powell", 80, (20, 20)), ("Serena_Williams", 40, (420, 300))):
        photo = lfw_rgb(name, 1)
        (box,) = detector.detect([photo])[0].boxes
        n = round(250 * face_px / (box[2] - box[0]))  # the photo scaled so that the face is face_px wide
        frame[y : y + n, x : x + n] = cv2.resize(photo, (n, n), interpolation=cv2.INTER_AREA)
    calls, handle = count_forwards(detector)
    try:
        standard = detector.detect([frame])[0]
        close = detector.detect([frame], policy="close")[0]
    finally:
        handle.remove()
    assert calls == [(1, 3, 480, 640), (1, 3, 240, 320)]
    assert len(standard) == 2 and len(close) == 1
    near = standard.boxes[np.argmin(standard.boxes[:, 0])]
    assert box_iou(torch.from_numpy(close.boxes), torch.from_numpy(near[None])).item() > 0.8
    assert DetectionPolicy.parse(CLOSE.as_dict()) == CLOSE
