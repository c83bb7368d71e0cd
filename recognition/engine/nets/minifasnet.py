"""MiniFASNet V2 and V1SE: the two small passive-liveness CNNs of Minivision's
Silent-Face-Anti-Spoofing (Apache-2.0), written here as our own modules.

Module and parameter names follow the upstream layout (``conv1``, ``conv2_dw``, ``conv_23``,
``conv_3.model.N.{conv,conv_dw,project[,se_module]}``, ``conv_34``, ``conv_4``, ``conv_45``,
``conv_5``, ``conv_6_sep``, ``conv_6_dw``, ``linear``, ``bn``, ``prob``), so the published
``state_dict``s load with ``strict=True`` once their DataParallel ``module.`` prefix is
stripped (:func:`strip_module_prefix`).

Input: float tensor [N, 3, 80, 80], **BGR** values 0-255 as they are (no mean, no scaling).
Output: raw logits [N, 3]; class 1 is "real face" (softmax it).

Shape of the network: a 3x3 stride-2 stem and a depthwise 3x3 (40x40), then three
"transition" inverted-bottleneck blocks with a stride-2 depthwise conv (20, 10, 5 px) each
followed by a stage of residual inverted bottlenecks (4, 6 and 2 blocks), a 1x1 expansion to
512, a 5x5 depthwise conv over the whole 5x5 map, a linear 512->128 + BatchNorm1d and the
3-way classifier. Expansion widths differ per block (the networks were pruned); the tables
below are read off the published weights. V1SE adds a squeeze-excitation on the residual branch
of the last block of each stage.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

INPUT_SIZE = 80
NUM_CLASSES = 3
LIVE_CLASS = 1
STEM = 32
HEAD = 512
EMBEDDING = 128
SE_REDUCTION = 4
# 80 -> 40 (stem) -> 20 -> 10 -> 5: the last depthwise conv spans the whole 5x5 map.
CONV6_KERNEL = (5, 5)

# Per stage: (width of the stage, expansion of its transition block, expansions of its residual blocks).
V2_STAGES: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (64, 103, (13, 13, 13, 13)),
    (128, 231, (231, 52, 26, 77, 26, 26)),
    (128, 308, (26, 26)),
)
V1SE_STAGES: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (64, 103, (13, 26, 13, 52)),
    (128, 231, (154, 52, 26, 52, 26, 26)),
    (128, 308, (26, 26)),
)


class ConvBlock(nn.Module):
    """Conv (no bias) -> BatchNorm -> PReLU; ``bn`` becomes Identity once folded."""

    def __init__(self, inp: int, out: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 padding: int = 0, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(inp, out, kernel, stride, padding, groups=groups, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(out)
        # Upstream's "Linear_block" is the same without the activation (no parameters to load for it).
        self.prelu = nn.PReLU(out) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.prelu(x) if self.prelu is not None else x


class SqueezeExcite(nn.Module):
    """Global average -> 1x1 reduce + BN + ReLU -> 1x1 expand + BN -> sigmoid gate."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION) -> None:
        super().__init__()
        mid = channels // reduction
        self.fc1 = nn.Conv2d(channels, mid, 1, bias=False)
        self.bn1: nn.Module = nn.BatchNorm2d(mid)
        self.fc2 = nn.Conv2d(mid, channels, 1, bias=False)
        self.bn2: nn.Module = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.adaptive_avg_pool2d(x, 1)
        w = F.relu(self.bn1(self.fc1(w)))
        w = torch.sigmoid(self.bn2(self.fc2(w)))
        return x * w


class Bottleneck(nn.Module):
    """1x1 expand (PReLU) -> 3x3 depthwise (PReLU, stride 1 or 2) -> 1x1 project (linear),
    with an identity shortcut when ``residual``; an optional squeeze-excitation gates the branch
    before the sum."""

    def __init__(self, inp: int, expand: int, out: int, stride: int, residual: bool, se: bool = False) -> None:
        super().__init__()
        self.conv = ConvBlock(inp, expand, 1)
        self.conv_dw = ConvBlock(expand, expand, 3, stride, groups=expand, padding=1)
        self.project = ConvBlock(expand, out, 1, act=False)
        self.residual = residual
        self.se_module = SqueezeExcite(out) if se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        if self.se_module is not None:
            y = self.se_module(y)
        return x + y if self.residual else y


class Stage(nn.Module):
    """A run of residual bottlenecks at one resolution (kept as ``.model`` for the upstream names)."""

    def __init__(self, width: int, expansions: Sequence[int], se_last: bool) -> None:
        super().__init__()
        last = len(expansions) - 1
        self.model = nn.Sequential(
            *[Bottleneck(width, e, width, 1, residual=True, se=se_last and i == last) for i, e in enumerate(expansions)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class MiniFASNet(nn.Module):
    def __init__(self, stages: Sequence[tuple[int, int, Sequence[int]]], se: bool,
                 num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        (w3, t3, e3), (w4, t4, e4), (w5, t5, e5) = stages
        self.conv1 = ConvBlock(3, STEM, 3, 2, padding=1)
        self.conv2_dw = ConvBlock(STEM, STEM, 3, 1, groups=STEM, padding=1)
        self.conv_23 = Bottleneck(STEM, t3, w3, 2, residual=False)
        self.conv_3 = Stage(w3, e3, se)
        self.conv_34 = Bottleneck(w3, t4, w4, 2, residual=False)
        self.conv_4 = Stage(w4, e4, se)
        self.conv_45 = Bottleneck(w4, t5, w5, 2, residual=False)
        self.conv_5 = Stage(w5, e5, se)
        self.conv_6_sep = ConvBlock(w5, HEAD, 1)
        self.conv_6_dw = ConvBlock(HEAD, HEAD, CONV6_KERNEL[0], groups=HEAD, act=False)  # valid: 5x5 -> 1x1
        self.linear = nn.Linear(HEAD, EMBEDDING, bias=False)
        self.bn: nn.Module = nn.BatchNorm1d(EMBEDDING)
        self.drop = nn.Dropout(0.2)  # training only; nothing to load
        self.prob = nn.Linear(EMBEDDING, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2_dw(self.conv1(x))
        x = self.conv_3(self.conv_23(x))
        x = self.conv_4(self.conv_34(x))
        x = self.conv_5(self.conv_45(x))
        x = self.conv_6_dw(self.conv_6_sep(x)).flatten(1)
        return self.prob(self.drop(self.bn(self.linear(x))))


class MiniFASNetV2(MiniFASNet):
    """``2.7_80x80_MiniFASNetV2.pth``: the crop is the face box scaled by 2.7."""

    def __init__(self) -> None:
        super().__init__(V2_STAGES, se=False)


class MiniFASNetV1SE(MiniFASNet):
    """``4_0_0_80x80_MiniFASNetV1SE.pth``: the crop is the face box scaled by 4.0."""

    def __init__(self) -> None:
        super().__init__(V1SE_STAGES, se=True)


ARCHS: dict[str, type[MiniFASNet]] = {"minifasnet_v2": MiniFASNetV2, "minifasnet_v1se": MiniFASNetV1SE}


def strip_module_prefix(state_dict: Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """The published files were saved from ``nn.DataParallel``: every key starts with ``module.``."""
    return OrderedDict((k[len("module."):] if k.startswith("module.") else k, v) for k, v in state_dict.items())


def convert(raw: Path) -> OrderedDict[str, torch.Tensor]:
    """The registry's converter: an upstream ``.pth`` (sha256 already checked) -> our ``state_dict``.

    The files are old-style pickles of plain tensors, which ``weights_only`` loading accepts, so
    no code from the file is ever run. Only the ``module.`` prefix changes; the loaders then load
    the result strictly into :class:`MiniFASNetV2` / :class:`MiniFASNetV1SE`.
    """
    return strip_module_prefix(torch.load(raw, map_location="cpu", weights_only=True))


def fuse_batchnorm(model: MiniFASNet) -> MiniFASNet:
    """An eval-mode copy with every BatchNorm folded into the conv or linear layer before it.

    Same outputs to float rounding, fewer kernels per block (this net is ~100 tiny layers, so on a
    CPU the per-layer overhead is most of the time). Inference only: the copy no longer has the
    upstream ``state_dict`` layout. ``model`` itself is not modified.
    """
    fused = copy.deepcopy(model).eval()
    for m in fused.modules():
        if isinstance(m, ConvBlock) and isinstance(m.bn, nn.BatchNorm2d):
            m.conv, m.bn = fuse_conv_bn_eval(m.conv, m.bn), nn.Identity()
        elif isinstance(m, SqueezeExcite) and isinstance(m.bn1, nn.BatchNorm2d):
            m.fc1, m.bn1 = fuse_conv_bn_eval(m.fc1, m.bn1), nn.Identity()
            m.fc2, m.bn2 = fuse_conv_bn_eval(m.fc2, m.bn2), nn.Identity()
    if isinstance(fused.bn, nn.BatchNorm1d):
        fused.linear, fused.bn = fuse_linear_bn_eval(fused.linear, fused.bn), nn.Identity()
    return fused
