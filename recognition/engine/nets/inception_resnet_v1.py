"""FaceNet Inception-ResNet-V1 (Szegedy et al. 2016, as used by davidsandberg/facenet).

160x160 RGB (prewhitened) -> 1792-d pooled features -> Linear 1792->128 (no bias) -> BatchNorm1d
-> L2. Module names follow the common PyTorch layout (conv2d_1a ... repeat_1 / mixed_6a /
repeat_2 / mixed_7a / repeat_3 / block8, last_linear, last_bn) so Keras/TF checkpoints map
by name. All batch-norms use eps=1e-3, the TF/Keras value the published weights were trained with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm -> ReLU."""

    def __init__(self, inp: int, out: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0):
        super().__init__()
        self.conv = nn.Conv2d(inp, out, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out, eps=BN_EPS)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Block35(nn.Module):
    """Inception-ResNet-A (35x35 grid in the paper; 17x17 at 160 input), 256 channels."""

    def __init__(self, scale: float = 0.17):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(256, 32, 1)
        self.branch1 = nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1))
        self.branch2 = nn.Sequential(
            BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1), BasicConv2d(32, 32, 3, padding=1)
        )
        self.conv2d = nn.Conv2d(96, 256, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = self.conv2d(torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1))
        return self.relu(x + self.scale * up)


class Block17(nn.Module):
    """Inception-ResNet-B, 896 channels, factorised 1x7 / 7x1 convolutions."""

    def __init__(self, scale: float = 0.10):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(896, 128, 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(896, 128, 1),
            BasicConv2d(128, 128, (1, 7), padding=(0, 3)),
            BasicConv2d(128, 128, (7, 1), padding=(3, 0)),
        )
        self.conv2d = nn.Conv2d(256, 896, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = self.conv2d(torch.cat((self.branch0(x), self.branch1(x)), 1))
        return self.relu(x + self.scale * up)


class Block8(nn.Module):
    """Inception-ResNet-C, 1792 channels; the very last one has no ReLU."""

    def __init__(self, scale: float = 0.20, relu: bool = True):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(1792, 192, 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(1792, 192, 1),
            BasicConv2d(192, 192, (1, 3), padding=(0, 1)),
            BasicConv2d(192, 192, (3, 1), padding=(1, 0)),
        )
        self.conv2d = nn.Conv2d(384, 1792, 1)
        self.relu = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = self.conv2d(torch.cat((self.branch0(x), self.branch1(x)), 1))
        return self.relu(x + self.scale * up)


class Mixed6a(nn.Module):
    """Reduction-A: 256 -> 896 channels, stride 2."""

    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(256, 384, 3, stride=2)
        self.branch1 = nn.Sequential(
            BasicConv2d(256, 192, 1), BasicConv2d(192, 192, 3, padding=1), BasicConv2d(192, 256, 3, stride=2)
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class Mixed7a(nn.Module):
    """Reduction-B: 896 -> 1792 channels, stride 2."""

    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 384, 3, stride=2))
        self.branch1 = nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, stride=2))
        self.branch2 = nn.Sequential(
            BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, padding=1), BasicConv2d(256, 256, 3, stride=2)
        )
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class InceptionResnetV1(nn.Module):
    """FaceNet embedder; ``forward`` returns unit-norm embeddings, ``forward_features`` the raw 128-d."""

    def __init__(self, embedding_size: int = 128, dropout: float = 0.2, num_classes: int | None = None):
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, 3)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.conv2d_4b = BasicConv2d(192, 256, 3, stride=2)
        self.repeat_1 = nn.Sequential(*[Block35(0.17) for _ in range(5)])
        self.mixed_6a = Mixed6a()
        self.repeat_2 = nn.Sequential(*[Block17(0.10) for _ in range(10)])
        self.mixed_7a = Mixed7a()
        self.repeat_3 = nn.Sequential(*[Block8(0.20) for _ in range(5)])
        self.block8 = Block8(1.0, relu=False)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.last_linear = nn.Linear(1792, embedding_size, bias=False)
        self.last_bn = nn.BatchNorm1d(embedding_size, eps=BN_EPS)
        # Training-only head on the pre-normalisation vector; absent unless asked for.
        self.classifier = nn.Linear(embedding_size, num_classes) if num_classes else None

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """conv2d_1a .. conv2d_4b (256 x 17 x 17 at 160 input); exposed for parity tests."""
        x = self.conv2d_2b(self.conv2d_2a(self.conv2d_1a(x)))
        x = self.conv2d_4b(self.conv2d_4a(self.conv2d_3b(self.maxpool_3a(x))))
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.repeat_1(self.stem(x))
        x = self.repeat_2(self.mixed_6a(x))
        x = self.block8(self.repeat_3(self.mixed_7a(x)))
        x = self.dropout(self.avgpool_1a(x).flatten(1))
        return self.last_bn(self.last_linear(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.forward_features(x), p=2, dim=1)

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(unit-norm embedding, classifier logits or None) in one pass."""
        feats = self.forward_features(x)
        logits = self.classifier(feats) if self.classifier is not None else None
        return F.normalize(feats, p=2, dim=1), logits
