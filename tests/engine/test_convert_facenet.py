"""Keras FaceNet (facenet_keras_2024.h5) -> InceptionResnetV1: parity computed another way.

An independent NumPy interpreter walks the Keras ``model_config`` graph layer by layer, reading
kernels and batch-norm statistics straight from the h5 with h5py (NHWC, TF padding rules), and
its outputs are compared with the converted PyTorch module: the stem (Conv2d_4b) and the final
128-d Bottleneck_BatchNorm vector. A golden check on LFW identities then checks the embeddings
mean something.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from recognition.engine.convert.facenet_keras import convert
from recognition.engine.embedders import FaceNetEmbedder, build_net

from .conftest import SHARED, raw_or_skip

torch.set_num_threads(2)

RAW_NAME = "facenet_keras_2024.h5"
RAW_SHA256 = "92c3c3f568c43bef41c0e3d2d6ca50b91f46e103bf471acbca5a2d77ea1f17e3"
LFW = Path(os.environ.get("FACEACCESS_LFW_DIR", SHARED / "datasets" / "lfw")) / "images"

pytestmark = [pytest.mark.weights, pytest.mark.slow]


@pytest.fixture(scope="module")
def raw() -> Path:
    return raw_or_skip(RAW_NAME)


@pytest.fixture(scope="module")
def net(raw: Path) -> torch.nn.Module:
    m = build_net("facenet_inception_resnet")
    m.load_state_dict(convert(raw), strict=True)
    return m.eval()


def lfw_crop(path: Path, size: int = 160, side: int = 120) -> np.ndarray:
    """Centre square of a 250x250 LFW image (where the face roughly is), resized; RGB uint8."""
    import cv2

    img = cv2.imread(str(path))[:, :, ::-1]
    cy, cx = img.shape[0] // 2, img.shape[1] // 2
    h = side // 2
    return np.ascontiguousarray(cv2.resize(img[cy - h:cy + h, cx - h:cx + h], (size, size),
                                           interpolation=cv2.INTER_AREA))


# ---------------------------------------------------------------- NumPy Keras interpreter
def _pad_same(x: np.ndarray, k: tuple[int, int], s: tuple[int, int]) -> np.ndarray:
    pads = []
    for dim, kk, ss in ((x.shape[1], k[0], s[0]), (x.shape[2], k[1], s[1])):
        out = -(-dim // ss)
        total = max((out - 1) * ss + kk - dim, 0)
        pads.append((total // 2, total - total // 2))  # TF puts the extra pixel after
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))


def np_conv(x: np.ndarray, kernel: np.ndarray, strides, padding: str) -> np.ndarray:
    kh, kw, cin, cout = kernel.shape
    if padding == "same":
        x = _pad_same(x, (kh, kw), strides)
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # N,oh,ow,C,kh,kw
    win = win[:, :: strides[0], :: strides[1]]
    n, oh, ow = win.shape[:3]
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(n * oh * ow, kh * kw * cin)
    return (cols @ kernel.reshape(kh * kw * cin, cout)).reshape(n, oh, ow, cout)


def np_maxpool(x: np.ndarray, k, s) -> np.ndarray:
    win = np.lib.stride_tricks.sliding_window_view(x, tuple(k), axis=(1, 2))[:, :: s[0], :: s[1]]
    return win.max(axis=(-2, -1))


def keras_forward_numpy(h5_path: Path, x_nhwc: np.ndarray, keep: set[str]) -> dict[str, np.ndarray]:
    """Run the Keras graph in float64 NumPy; returns the outputs of the layers named in ``keep``."""
    import h5py

    with h5py.File(h5_path, "r") as f:
        layers = json.loads(f.attrs["model_config"])["config"]["layers"]
        w = f["model_weights"]

        def var(layer: str, v: str) -> np.ndarray:
            return np.asarray(w[layer][layer][f"{v}:0"], dtype=np.float64)

        acts: dict[str, np.ndarray] = {}
        uses: dict[str, int] = {}
        for layer in layers:
            for inb in layer["inbound_nodes"][0] if layer["inbound_nodes"] else []:
                uses[inb[0]] = uses.get(inb[0], 0) + 1
        out: dict[str, np.ndarray] = {}
        for layer in layers:
            cls, cfg, name = layer["class_name"], layer["config"], layer["config"]["name"]
            ins = [acts[i[0]] for i in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
            if cls == "InputLayer":
                y = x_nhwc.astype(np.float64)
            elif cls == "Conv2D":
                assert cfg["activation"] == "linear" and tuple(cfg["dilation_rate"]) == (1, 1)
                y = np_conv(ins[0], var(name, "kernel"), cfg["strides"], cfg["padding"])
                if cfg["use_bias"]:
                    y = y + var(name, "bias")
            elif cls == "BatchNormalization":
                gamma = var(name, "gamma") if cfg["scale"] else 1.0
                beta = var(name, "beta") if cfg["center"] else 0.0
                y = (ins[0] - var(name, "moving_mean")) / np.sqrt(var(name, "moving_variance") + cfg["epsilon"])
                y = y * gamma + beta
            elif cls == "Activation":
                assert cfg["activation"] == "relu"
                y = np.maximum(ins[0], 0.0)
            elif cls == "MaxPooling2D":
                assert cfg["padding"] == "valid"
                y = np_maxpool(ins[0], cfg["pool_size"], cfg["strides"])
            elif cls == "Concatenate":
                y = np.concatenate(ins, axis=cfg["axis"])
            elif cls == "Lambda":  # keras-facenet's residual scaling: x * scale
                y = ins[0] * cfg["arguments"]["scale"]
            elif cls == "Add":
                y = ins[0] + ins[1]
            elif cls == "GlobalAveragePooling2D":
                y = ins[0].mean(axis=(1, 2))
            elif cls == "Dropout":
                y = ins[0]
            elif cls == "Dense":
                y = ins[0] @ var(name, "kernel") + (var(name, "bias") if cfg["use_bias"] else 0.0)
            else:
                raise AssertionError(f"unhandled Keras layer {cls}")
            acts[name] = y
            if name in keep:
                out[name] = y
            for i in layer["inbound_nodes"][0] if layer["inbound_nodes"] else []:
                uses[i[0]] -= 1
                if not uses[i[0]]:
                    del acts[i[0]]  # free memory as we go
    return out


# ---------------------------------------------------------------- tests
def test_raw_file_is_the_pinned_one(raw: Path) -> None:
    assert hashlib.sha256(raw.read_bytes()).hexdigest() == RAW_SHA256


def test_numpy_keras_graph_matches_torch(raw: Path, net: torch.nn.Module) -> None:
    face = lfw_crop(LFW / "Colin_Powell" / "Colin_Powell_0001.jpg") if LFW.is_dir() else None
    noise = np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    crops = np.stack([c for c in (face, noise) if c is not None])
    x = FaceNetEmbedder.preprocess(crops)  # NCHW float32, prewhitened
    ref = keras_forward_numpy(raw, x.permute(0, 2, 3, 1).numpy(),
                              keep={"Conv2d_4b_3x3_Activation", "Bottleneck_BatchNorm"})
    with torch.inference_mode():
        stem = net.stem(x).permute(0, 2, 3, 1).numpy()
        feats = net.forward_features(x).numpy()
    stem_ref, feats_ref = ref["Conv2d_4b_3x3_Activation"], ref["Bottleneck_BatchNorm"]
    stem_err = np.abs(stem - stem_ref).max() / np.abs(stem_ref).max()
    feat_err = np.abs(feats - feats_ref).max() / np.abs(feats_ref).max()
    print(f"stem rel max err {stem_err:.2e}; 128-d rel max err {feat_err:.2e}")
    assert stem.shape == stem_ref.shape == (len(crops), 17, 17, 256)
    assert stem_err < 1e-4
    assert feat_err < 1e-4


def test_lfw_same_person_closer_than_different(net: torch.nn.Module) -> None:
    if not LFW.is_dir():
        pytest.skip(f"LFW not found at {LFW}")
    people = ["George_W_Bush", "Colin_Powell", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder",
              "Serena_Williams"]
    crops, labels = [], []
    for i, p in enumerate(people):
        for j in range(1, 5):
            crops.append(lfw_crop(LFW / p / f"{p}_{j:04d}.jpg"))
            labels.append(i)
    emb = FaceNetEmbedder(net).embed(np.stack(crops))
    y = np.array(labels)
    d = np.linalg.norm(emb[:, None] - emb[None], axis=2)
    same = (y[:, None] == y[None]) & ~np.eye(len(y), dtype=bool)
    diff = y[:, None] != y[None]
    print(f"same-person mean {d[same].mean():.3f} max {d[same].max():.3f}; "
          f"different mean {d[diff].mean():.3f} min {d[diff].min():.3f}")
    assert d[same].mean() < 0.8 < 1.1 < d[diff].mean()
    # nearest neighbour of every face is the same person (leave-one-out 1-NN)
    nn_idx = np.where(np.eye(len(y), dtype=bool), np.inf, d).argmin(axis=1)
    assert (y[nn_idx] == y).mean() >= 0.95
    # embeddings must not collapse (the classic "model left in train mode / BN" failure)
    assert d[diff].min() > 0.5


def test_half_precision_stays_close(net: torch.nn.Module) -> None:
    """What ``fp16=True`` does on a GPU, run on the CPU: the embedding barely moves."""
    import copy

    if not LFW.is_dir():
        pytest.skip(f"LFW not found at {LFW}")
    crops = np.stack([lfw_crop(LFW / "Tony_Blair" / f"Tony_Blair_000{j}.jpg") for j in (1, 2)])
    ref = FaceNetEmbedder(net).embed(crops)
    half = copy.deepcopy(net).half()
    try:
        with torch.inference_mode():
            h = half(FaceNetEmbedder.preprocess(crops).half()).float().numpy()
    except RuntimeError as exc:  # half convolutions unsupported by this CPU build
        pytest.skip(f"fp16 on CPU unavailable: {exc}")
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    assert (h * ref).sum(axis=1).min() > 0.9995
