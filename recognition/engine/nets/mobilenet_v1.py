"""FaceNet with a MobileNetV1 (width 1.0) backbone, as in the seed design.

160x160 RGB -> MobileNetV1 -> 1024x5x5 -> global average pool -> dropout -> Linear 1024->128
-> BatchNorm1d(128) -> L2 normalisation. An optional classifier (training only) sits on the
pre-normalisation 128-d vector, so cross-entropy sees unnormalised features while the triplet
loss uses the unit-norm embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(inp: int, out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, out, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU6(inplace=True),
    )


def conv_dw(inp: int, out: int, stride: int) -> nn.Sequential:
    """Depthwise 3x3 (one kernel per channel) then pointwise 1x1."""
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.ReLU6(inplace=True),
        nn.Conv2d(inp, out, 1, 1, 0, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU6(inplace=True),
    )


class MobileNetV1(nn.Module):
    """MobileNetV1 feature extractor, overall stride 32 (160x160 -> 1024x5x5)."""

    out_channels = 1024

    def __init__(self) -> None:
        super().__init__()
        # Three stages (strides 8 / 16 / 32), the split RetinaFace-style FPNs also use.
        self.stage1 = nn.Sequential(
            conv_bn(3, 32, 2),
            conv_dw(32, 64, 1),
            conv_dw(64, 128, 2),
            conv_dw(128, 128, 1),
            conv_dw(128, 256, 2),
            conv_dw(256, 256, 1),
        )
        self.stage2 = nn.Sequential(
            conv_dw(256, 512, 2),
            *[conv_dw(512, 512, 1) for _ in range(5)],
        )
        self.stage3 = nn.Sequential(
            conv_dw(512, 1024, 2),
            conv_dw(1024, 1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage3(self.stage2(self.stage1(x)))


class FaceNetMobileNet(nn.Module):
    """FaceNet embedder on MobileNetV1; ``forward`` returns unit-norm 128-d embeddings."""

    def __init__(self, embedding_size: int = 128, dropout: float = 0.2, num_classes: int | None = None):
        super().__init__()
        self.backbone = MobileNetV1()
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.bottleneck = nn.Linear(MobileNetV1.out_channels, embedding_size, bias=False)
        self.last_bn = nn.BatchNorm1d(embedding_size)
        # Training-only head; absent at inference so converted/cached state_dicts stay minimal.
        self.classifier = nn.Linear(embedding_size, num_classes) if num_classes else None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 128-d vector before L2 normalisation (what the classifier sees)."""
        x = self.avg(self.backbone(x)).flatten(1)
        return self.last_bn(self.bottleneck(self.dropout(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.forward_features(x), p=2, dim=1)

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(unit-norm embedding, classifier logits or None) in one pass."""
        feats = self.forward_features(x)
        logits = self.classifier(feats) if self.classifier is not None else None
        return F.normalize(feats, p=2, dim=1), logits
