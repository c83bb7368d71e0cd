"""OpenCV Zoo SFace ONNX -> hand-written SFace module: parity against onnxruntime on the raw file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from recognition.engine.convert.sface import convert
from recognition.engine.embedders import SFaceEmbedder, build_net

from .conftest import SHARED, raw_or_skip

torch.set_num_threads(2)

RAW_NAME = "face_recognition_sface_2021dec.onnx"
RAW_SHA256 = "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79"
LFW = Path(os.environ.get("FACEACCESS_LFW_DIR", SHARED / "datasets" / "lfw")) / "images"
PEOPLE = ["George_W_Bush", "Colin_Powell", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder",
          "Serena_Williams"]

pytestmark = [pytest.mark.weights, pytest.mark.slow]


@pytest.fixture(scope="module")
def raw() -> Path:
    return raw_or_skip(RAW_NAME)


@pytest.fixture(scope="module")
def embedder(raw: Path) -> SFaceEmbedder:
    net = build_net("sface")
    net.load_state_dict(convert(raw), strict=True)
    return SFaceEmbedder(net)


@pytest.fixture(scope="module")
def lfw_crops() -> tuple[np.ndarray, np.ndarray]:
    if not LFW.is_dir():
        pytest.skip(f"LFW not found at {LFW}")
    import cv2

    crops, labels = [], []
    for i, p in enumerate(PEOPLE):
        for j in range(1, 5):
            img = cv2.imread(str(LFW / p / f"{p}_{j:04d}.jpg"))[:, :, ::-1]
            c = img[65:185, 65:185]  # centre 120x120 of the 250x250 image: roughly the face
            crops.append(cv2.resize(c, (112, 112), interpolation=cv2.INTER_AREA))
            labels.append(i)
    return np.stack(crops), np.array(labels)


def _onnx_fc1(raw: Path, x_bgr_nchw: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3  # the file lists its initializers as graph inputs; ORT warns per tensor
    sess = ort.InferenceSession(str(raw), so, providers=["CPUExecutionProvider"])
    # the graph's batch dimension is fixed at 1
    return np.concatenate([sess.run(["fc1"], {"data": x_bgr_nchw[i : i + 1]})[0] for i in range(len(x_bgr_nchw))])


def test_raw_file_is_the_pinned_one(raw: Path) -> None:
    assert hashlib.sha256(raw.read_bytes()).hexdigest() == RAW_SHA256


def test_parity_with_onnxruntime(raw: Path, embedder: SFaceEmbedder, lfw_crops) -> None:
    crops = np.concatenate([lfw_crops[0][::4], np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3),
                                                                                  dtype=np.uint8)])
    # ONNX input built independently of the embedder: RGB -> BGR by hand, NCHW float 0-255
    x = np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2)).astype(np.float32)
    ref = _onnx_fc1(raw, x)
    with torch.inference_mode():
        ours = embedder.net.forward_features(embedder.preprocess(crops)).numpy()
    err = np.abs(ours - ref).max()
    scale = np.abs(ref).max()
    print(f"SFace fc1 max abs diff {err:.2e} (output max |x| {scale:.3f}, rel {err / scale:.2e})")
    assert err / scale < 1e-5
    # and the unit-norm embedding the engine uses
    ref_unit = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.embed(crops), ref_unit, atol=1e-5)


def test_lfw_same_person_closer_than_different(embedder: SFaceEmbedder, lfw_crops) -> None:
    crops, y = lfw_crops
    emb = embedder.embed(crops)
    d = np.linalg.norm(emb[:, None] - emb[None], axis=2)
    same = (y[:, None] == y[None]) & ~np.eye(len(y), dtype=bool)
    diff = y[:, None] != y[None]
    print(f"same-person mean {d[same].mean():.3f}; different mean {d[diff].mean():.3f}")
    assert d[same].mean() + 0.2 < d[diff].mean()
    nn_idx = np.where(np.eye(len(y), dtype=bool), np.inf, d).argmin(axis=1)
    assert (y[nn_idx] == y).mean() >= 0.8


def test_half_precision_stays_close(embedder: SFaceEmbedder, lfw_crops) -> None:
    """What ``fp16=True`` does on a GPU, run on the CPU: the embedding barely moves."""
    import copy

    crops = lfw_crops[0][:4]
    ref = embedder.embed(crops)
    half = copy.deepcopy(embedder.net).half()
    try:
        with torch.inference_mode():
            h = half(embedder.preprocess(crops).half()).float().numpy()
    except RuntimeError as exc:  # half convolutions unsupported by this CPU build
        pytest.skip(f"fp16 on CPU unavailable: {exc}")
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    assert (h * ref).sum(axis=1).min() > 0.9995


def test_the_embedders_folded_copy_matches_the_converted_module_and_leaves_it_untouched(raw, embedder, lfw_crops):
    net = build_net("sface")
    net.load_state_dict(convert(raw), strict=True)
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fused = net.fused()
    assert not any(isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d) for m in fused.modules())
    x = SFaceEmbedder.preprocess(lfw_crops[0])
    with torch.no_grad():
        ref, got = net.forward_features(x), fused.forward_features(x)
        served = embedder.net.forward_features(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(ref, got, atol=2e-5, rtol=0), (ref - got).abs().max()
    assert torch.allclose(ref, served, atol=2e-5, rtol=0)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the original is not modified
