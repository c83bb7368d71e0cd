"""SFace (OpenCV Zoo ``face_recognition_sface_2021dec``), re-expressed as a PyTorch module.

The published ONNX graph is a MobileNetV1-style network with PReLU activations (no residuals):
input ``data`` [N,3,112,112] BGR 0-255 -> (x - 127.5) / 128 -> 3x3 conv -> 13 depthwise-separable
blocks (stride 2 at blocks 2, 4, 6 and 12) -> 1024x7x7 -> BatchNorm -> Dropout(0.4) -> flatten
-> Linear 50176->128 -> BatchNorm1d = ``fc1``. Batch-norm epsilons are those of the graph
(1e-3 in the trunk, 2e-5 in the head).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

INPUT_MEAN = 127.5
INPUT_SCALE = 1.0 / 128.0
TRUNK_EPS = 1e-3
HEAD_EPS = 2e-5

# (in, out, depthwise stride) of the depthwise-separable blocks, ONNX conv_2 .. conv_14
BLOCKS = [
    (32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2),
    (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 512, 1),
    (512, 1024, 2), (1024, 1024, 1),
]


class ConvBNPReLU(nn.Module):
    def __init__(self, inp: int, out: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out, eps=TRUNK_EPS)
        self.act = nn.PReLU(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class DepthwiseSeparable(nn.Module):
    def __init__(self, inp: int, out: int, stride: int):
        super().__init__()
        self.dw = ConvBNPReLU(inp, inp, 3, stride, groups=inp)
        self.pw = ConvBNPReLU(inp, out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


class SFace(nn.Module):
    """``forward_features`` reproduces the ONNX ``fc1`` output; ``forward`` L2-normalises it."""

    def __init__(self, embedding_size: int = 128):
        super().__init__()
        self.stem = ConvBNPReLU(3, 32, 3)
        self.blocks = nn.Sequential(*[DepthwiseSeparable(i, o, s) for i, o, s in BLOCKS])
        self.bn = nn.BatchNorm2d(1024, eps=HEAD_EPS)
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(1024 * 7 * 7, embedding_size)
        self.fc_bn = nn.BatchNorm1d(embedding_size, eps=HEAD_EPS)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N,3,112,112] BGR in 0..255 (normalisation happens here, as in the ONNX graph)."""
        x = (x - INPUT_MEAN) * INPUT_SCALE
        x = self.bn(self.blocks(self.stem(x)))
        return self.fc_bn(self.fc(self.dropout(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.forward_features(x), p=2, dim=1)

    def fused(self) -> SFace:
        """An eval-mode copy with every BatchNorm folded into the conv or linear layer next to it.

        Same outputs to float rounding (max abs difference ~1e-5 on ``forward_features``), ~1/4 less CPU
        time per face; inference only (the copy's state_dict no longer has the converted layout).
        """
        fused = copy.deepcopy(self).eval()
        with torch.no_grad():
            for block in fused.modules():
                if isinstance(block, ConvBNPReLU):
                    block.conv, block.bn = fuse_conv_bn_eval(block.conv, block.bn), nn.Identity()
            # Head: flatten(bn(x)) -> fc -> fc_bn. The trunk's last BatchNorm is a per-channel a*x + c, so
            # fc(flatten(a*x + c)) = (W * a) x + (b + W c) with a, c repeated over the 7x7 positions; fc_bn
            # then scales and shifts every output.
            bn, fc, fc_bn = fused.bn, fused.fc, fused.fc_bn
            a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            c = bn.bias - bn.running_mean * a
            positions = fc.in_features // a.numel()
            a_flat, c_flat = a.repeat_interleave(positions), c.repeat_interleave(positions)
            weight, bias = fc.weight * a_flat, fc.bias + fc.weight @ c_flat
            s = fc_bn.weight / torch.sqrt(fc_bn.running_var + fc_bn.eps)
            fc.weight.copy_(weight * s[:, None])
            fc.bias.copy_((bias - fc_bn.running_mean) * s + fc_bn.bias)
            fused.bn, fused.fc_bn = nn.Identity(), nn.Identity()
        return fused
