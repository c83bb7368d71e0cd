"""Convert the Keras FaceNet (keras-facenet lineage, ``facenet_keras_2024.h5``) to our InceptionResnetV1.

The h5 holds a Keras functional model "inception_resnet_v1" with 245 weighted layers named in the
TF-slim style (``Block35_1_Branch_2_Conv2d_0b_3x3`` ...). Each maps by name onto one module of
:class:`recognition.engine.nets.inception_resnet_v1.InceptionResnetV1`. Read with h5py only: no
TensorFlow/Keras needed. Keras batch-norms were built with ``scale=False`` so gamma is 1.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from ..nets.inception_resnet_v1 import InceptionResnetV1

# (torch sub-module, Keras layer suffix) for the BasicConv2d units of each block type.
_BLOCK35 = [
    ("branch0", "Branch_0_Conv2d_1x1"),
    ("branch1.0", "Branch_1_Conv2d_0a_1x1"),
    ("branch1.1", "Branch_1_Conv2d_0b_3x3"),
    ("branch2.0", "Branch_2_Conv2d_0a_1x1"),
    ("branch2.1", "Branch_2_Conv2d_0b_3x3"),
    ("branch2.2", "Branch_2_Conv2d_0c_3x3"),
]
_BLOCK17 = [
    ("branch0", "Branch_0_Conv2d_1x1"),
    ("branch1.0", "Branch_1_Conv2d_0a_1x1"),
    ("branch1.1", "Branch_1_Conv2d_0b_1x7"),
    ("branch1.2", "Branch_1_Conv2d_0c_7x1"),
]
_BLOCK8 = [
    ("branch0", "Branch_0_Conv2d_1x1"),
    ("branch1.0", "Branch_1_Conv2d_0a_1x1"),
    ("branch1.1", "Branch_1_Conv2d_0b_1x3"),
    ("branch1.2", "Branch_1_Conv2d_0c_3x1"),
]
_MIXED_6A = [
    ("branch0", "Branch_0_Conv2d_1a_3x3"),
    ("branch1.0", "Branch_1_Conv2d_0a_1x1"),
    ("branch1.1", "Branch_1_Conv2d_0b_3x3"),
    ("branch1.2", "Branch_1_Conv2d_1a_3x3"),
]
_MIXED_7A = [
    ("branch0.0", "Branch_0_Conv2d_0a_1x1"),
    ("branch0.1", "Branch_0_Conv2d_1a_3x3"),
    ("branch1.0", "Branch_1_Conv2d_0a_1x1"),
    ("branch1.1", "Branch_1_Conv2d_1a_3x3"),
    ("branch2.0", "Branch_2_Conv2d_0a_1x1"),
    ("branch2.1", "Branch_2_Conv2d_0b_3x3"),
    ("branch2.2", "Branch_2_Conv2d_1a_3x3"),
]
_STEM = {
    "conv2d_1a": "Conv2d_1a_3x3",
    "conv2d_2a": "Conv2d_2a_3x3",
    "conv2d_2b": "Conv2d_2b_3x3",
    "conv2d_3b": "Conv2d_3b_1x1",
    "conv2d_4a": "Conv2d_4a_3x3",
    "conv2d_4b": "Conv2d_4b_3x3",
}


def layer_map() -> tuple[dict[str, str], dict[str, str]]:
    """(BasicConv2d torch prefix -> Keras conv name, residual-conv torch prefix -> Keras conv name)."""
    basic: dict[str, str] = dict(_STEM)
    residual: dict[str, str] = {}

    def block(torch_prefix: str, keras_prefix: str, units: list[tuple[str, str]]) -> None:
        for t, k in units:
            basic[f"{torch_prefix}.{t}"] = f"{keras_prefix}_{k}"
        residual[f"{torch_prefix}.conv2d"] = f"{keras_prefix}_Conv2d_1x1"

    for i in range(5):
        block(f"repeat_1.{i}", f"Block35_{i + 1}", _BLOCK35)
    for i in range(10):
        block(f"repeat_2.{i}", f"Block17_{i + 1}", _BLOCK17)
    for i in range(5):
        block(f"repeat_3.{i}", f"Block8_{i + 1}", _BLOCK8)
    block("block8", "Block8_6", _BLOCK8)
    for t, k in _MIXED_6A:
        basic[f"mixed_6a.{t}"] = f"Mixed_6a_{k}"
    for t, k in _MIXED_7A:
        basic[f"mixed_7a.{t}"] = f"Mixed_7a_{k}"
    return basic, residual


class _H5Weights:
    """Reads ``model_weights/<layer>/<layer>/<var>:0`` and records which layers were consumed."""

    def __init__(self, f: h5py.File):
        self.root = f["model_weights"]
        self.used: set[str] = set()

    def get(self, layer: str, var: str) -> np.ndarray:
        self.used.add(layer)
        return np.asarray(self.root[layer][layer][f"{var}:0"], dtype=np.float32)

    def weighted_layers(self) -> set[str]:
        return {name for name in self.root.keys() if len(self.root[name].keys())}


def _bn(sd: dict[str, torch.Tensor], prefix: str, w: _H5Weights, layer: str) -> None:
    beta = w.get(layer, "beta")
    sd[f"{prefix}.weight"] = torch.ones(beta.shape[0])  # Keras scale=False: gamma fixed at 1
    sd[f"{prefix}.bias"] = torch.from_numpy(beta)
    sd[f"{prefix}.running_mean"] = torch.from_numpy(w.get(layer, "moving_mean"))
    sd[f"{prefix}.running_var"] = torch.from_numpy(w.get(layer, "moving_variance"))
    sd[f"{prefix}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)


def _conv_kernel(k: np.ndarray) -> torch.Tensor:
    # Keras (kh, kw, in, out) -> PyTorch (out, in, kh, kw)
    return torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))


def convert(raw_path: Path) -> dict[str, torch.Tensor]:
    """State_dict for ``InceptionResnetV1()`` (no classifier) from the Keras h5 file."""
    basic, residual = layer_map()
    sd: dict[str, torch.Tensor] = {}
    with h5py.File(raw_path, "r") as f:
        w = _H5Weights(f)
        for prefix, layer in basic.items():
            sd[f"{prefix}.conv.weight"] = _conv_kernel(w.get(layer, "kernel"))
            _bn(sd, f"{prefix}.bn", w, f"{layer}_BatchNorm")
        for prefix, layer in residual.items():
            sd[f"{prefix}.weight"] = _conv_kernel(w.get(layer, "kernel"))
            sd[f"{prefix}.bias"] = torch.from_numpy(w.get(layer, "bias"))
        sd["last_linear.weight"] = torch.from_numpy(np.ascontiguousarray(w.get("Bottleneck", "kernel").T))
        _bn(sd, "last_bn", w, "Bottleneck_BatchNorm")
        unused = w.weighted_layers() - w.used
        if unused:
            raise ValueError(f"{len(unused)} Keras layers not mapped, e.g. {sorted(unused)[:5]}")
    net = InceptionResnetV1()
    net.load_state_dict(sd, strict=True)  # raises on any missing/unexpected key or shape mismatch
    return net.state_dict()
