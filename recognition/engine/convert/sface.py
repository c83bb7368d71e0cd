"""Convert OpenCV Zoo's ``face_recognition_sface_2021dec.onnx`` to the state_dict of our SFace module.

Only the ``onnx`` package is used (to read initializers); the graph itself was re-written by hand in
:mod:`recognition.engine.nets.sface`. Before mapping, the converter checks that the graph still has
the op sequence and constants the hand-written module assumes, so a different file fails loudly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from ..nets.sface import BLOCKS, INPUT_MEAN, INPUT_SCALE, SFace


def _expected_ops() -> list[str]:
    return ["Sub", "Mul"] + ["Conv", "BatchNormalization", "PRelu"] * (1 + 2 * len(BLOCKS)) + [
        "BatchNormalization", "Dropout", "Flatten", "Gemm", "BatchNormalization",
    ]


def _unit(sd: dict[str, torch.Tensor], prefix: str, init: dict[str, np.ndarray], onnx_prefix: str,
          bn_name: str, act_name: str) -> None:
    """Conv + BN + PReLU unit; ONNX names e.g. conv_3_dw_conv2d_weight / conv_3_dw_batchnorm_* ..."""
    sd[f"{prefix}.conv.weight"] = torch.from_numpy(init[f"{onnx_prefix}_conv2d_weight"])
    _bn(sd, f"{prefix}.bn", init, f"{onnx_prefix}_{bn_name}")
    sd[f"{prefix}.act.weight"] = torch.from_numpy(init[f"{onnx_prefix}_{act_name}_gamma"].reshape(-1))


def _bn(sd: dict[str, torch.Tensor], prefix: str, init: dict[str, np.ndarray], name: str) -> None:
    sd[f"{prefix}.weight"] = torch.from_numpy(init[f"{name}_gamma"])
    sd[f"{prefix}.bias"] = torch.from_numpy(init[f"{name}_beta"])
    sd[f"{prefix}.running_mean"] = torch.from_numpy(init[f"{name}_moving_mean"])
    sd[f"{prefix}.running_var"] = torch.from_numpy(init[f"{name}_moving_var"])
    sd[f"{prefix}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)


def convert(raw_path: Path) -> dict[str, torch.Tensor]:
    """State_dict for ``SFace()`` from the ONNX file (strictly loaded before returning)."""
    model = onnx.load(str(raw_path))
    ops = [n.op_type for n in model.graph.node]
    if ops != _expected_ops():
        raise ValueError(f"{raw_path.name}: ONNX graph differs from the SFace layout this module reproduces")
    init = {i.name: numpy_helper.to_array(i).astype(np.float32) for i in model.graph.initializer}
    if not (np.allclose(init["scalar_op1"], INPUT_MEAN) and np.allclose(init["scalar_op2"], INPUT_SCALE)):
        raise ValueError("unexpected input normalisation constants in the SFace graph")

    sd: dict[str, torch.Tensor] = {}
    _unit(sd, "stem", init, "conv_1", "batchnorm", "relu")
    for i in range(len(BLOCKS)):
        n = i + 2  # ONNX numbering starts at conv_2 for the first separable block
        _unit(sd, f"blocks.{i}.dw", init, f"conv_{n}_dw", "batchnorm", "relu")
        _unit(sd, f"blocks.{i}.pw", init, f"conv_{n}", "batchnorm", "relu")
    _bn(sd, "bn", init, "bn1")
    sd["fc.weight"] = torch.from_numpy(init["pre_fc1_weight"])  # Gemm transB=1: already (out, in)
    sd["fc.bias"] = torch.from_numpy(init["pre_fc1_bias"])
    _bn(sd, "fc_bn", init, "fc1")

    net = SFace()
    net.load_state_dict(sd, strict=True)
    return net.state_dict()
