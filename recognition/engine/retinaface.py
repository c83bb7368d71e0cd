"""RetinaFace with a MobileNetV1 x0.25 body (the classic "mnet" configuration).

Module names follow biubug6/Pytorch_Retinaface exactly (``body.stage1``,
``fpn.output1``, ``ssh1.conv5X5_1``, ``ClassHead.0.conv1x1`` ...), so a
state_dict in that layout loads with ``strict=True``.

Input: float tensor [N, 3, H, W], **BGR** channels minus the mean
(104, 117, 123), no scaling; any H and W.
Output: ``(loc [N, A, 4], conf [N, A, 2], landms [N, A, 10])`` with the anchors
ordered as :func:`recognition.engine.detector.prior_boxes` generates them.
``conf`` is always the raw logits (background, face), in train and eval mode
alike -- unlike the classic code, which applies softmax in eval mode -- so a
loss never receives probabilities by accident; take ``conf.softmax(-1)[..., 1]``
for the face score.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

NUM_ANCHORS = 2  # two anchor sizes per location and level
IN_CHANNELS = (64, 128, 256)  # the three body stage outputs
OUT_CHANNELS = 64
LEAKY = 0.1  # mnet config: out_channels <= 64 -> LeakyReLU(0.1) in FPN and SSH


def conv_bn(inp: int, oup: int, stride: int = 1, leaky: float = 0.0) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, 1, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


def conv_bn_no_relu(inp: int, oup: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 3, 1, 1, bias=False), nn.BatchNorm2d(oup))


def conv_bn1x1(inp: int, oup: int, leaky: float = 0.0) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


def conv_dw(inp: int, oup: int, stride: int, leaky: float = LEAKY) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1, each with BN + LeakyReLU (indices 0,1 / 3,4)."""
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


class MobileNetV1(nn.Module):
    """MobileNetV1 x0.25 trunk; returns the outputs of stage1/2/3 (strides 8/16/32)."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            conv_bn(3, 8, 2, leaky=LEAKY),
            conv_dw(8, 16, 1),
            conv_dw(16, 32, 2),
            conv_dw(32, 32, 1),
            conv_dw(32, 64, 2),
            conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(conv_dw(64, 128, 2), *[conv_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(conv_dw(128, 256, 2), conv_dw(256, 256, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        c3 = self.stage3(c2)
        return [c1, c2, c3]


class FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, ...] = IN_CHANNELS, out_channels: int = OUT_CHANNELS) -> None:
        super().__init__()
        leaky = LEAKY if out_channels <= 64 else 0.0
        self.output1 = conv_bn1x1(in_channels[0], out_channels, leaky)
        self.output2 = conv_bn1x1(in_channels[1], out_channels, leaky)
        self.output3 = conv_bn1x1(in_channels[2], out_channels, leaky)
        self.merge1 = conv_bn(out_channels, out_channels, leaky=leaky)
        self.merge2 = conv_bn(out_channels, out_channels, leaky=leaky)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        out1 = self.output1(feats[0])
        out2 = self.output2(feats[1])
        out3 = self.output3(feats[2])
        out2 = self.merge2(out2 + F.interpolate(out3, size=out2.shape[-2:], mode="nearest"))
        out1 = self.merge1(out1 + F.interpolate(out2, size=out1.shape[-2:], mode="nearest"))
        return [out1, out2, out3]


class SSH(nn.Module):
    """Single Stage Headless context module: 3x3 | 5x5 (two 3x3) | 7x7 (three 3x3), concatenated."""

    def __init__(self, in_channel: int, out_channel: int) -> None:
        super().__init__()
        assert out_channel % 4 == 0
        leaky = LEAKY if out_channel <= 64 else 0.0
        self.conv3X3 = conv_bn_no_relu(in_channel, out_channel // 2)
        self.conv5X5_1 = conv_bn(in_channel, out_channel // 4, leaky=leaky)
        self.conv5X5_2 = conv_bn_no_relu(out_channel // 4, out_channel // 4)
        self.conv7X7_2 = conv_bn(out_channel // 4, out_channel // 4, leaky=leaky)
        self.conv7x7_3 = conv_bn_no_relu(out_channel // 4, out_channel // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c3 = self.conv3X3(x)
        c5_1 = self.conv5X5_1(x)
        c5 = self.conv5X5_2(c5_1)
        c7 = self.conv7x7_3(self.conv7X7_2(c5_1))
        return F.relu(torch.cat([c3, c5, c7], dim=1))


class _Head(nn.Module):
    """1x1 conv producing ``per_anchor`` values per anchor, flattened to [N, H*W*anchors, per_anchor]."""

    def __init__(self, in_channels: int, per_anchor: int, num_anchors: int = NUM_ANCHORS) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(in_channels, num_anchors * per_anchor, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.per_anchor)


class RetinaFace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = MobileNetV1()
        self.fpn = FPN(IN_CHANNELS, OUT_CHANNELS)
        self.ssh1 = SSH(OUT_CHANNELS, OUT_CHANNELS)
        self.ssh2 = SSH(OUT_CHANNELS, OUT_CHANNELS)
        self.ssh3 = SSH(OUT_CHANNELS, OUT_CHANNELS)
        self.ClassHead = nn.ModuleList([_Head(OUT_CHANNELS, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([_Head(OUT_CHANNELS, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([_Head(OUT_CHANNELS, 10) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p1, p2, p3 = self.fpn(self.body(x))
        feats = [self.ssh1(p1), self.ssh2(p2), self.ssh3(p3)]
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, feats, strict=True)], dim=1)
        conf = torch.cat([h(f) for h, f in zip(self.ClassHead, feats, strict=True)], dim=1)
        landms = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats, strict=True)], dim=1)
        return loc, conf, landms


def fuse_batchnorm(model: RetinaFace) -> RetinaFace:
    """An eval-mode copy of ``model`` with every Conv2d -> BatchNorm2d pair folded into one conv.

    Same outputs (to float rounding), ~1/3 less CPU time; for inference only (the copy
    no longer has the classic state_dict layout). ``model`` itself is not modified.
    """
    fused = copy.deepcopy(model).eval()
    for seq in fused.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        for i in range(len(seq) - 1):
            if isinstance(seq[i], nn.Conv2d) and isinstance(seq[i + 1], nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(seq[i], seq[i + 1])
                seq[i + 1] = nn.Identity()
    return fused
