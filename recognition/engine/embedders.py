"""Face embedders: one interface over the project's three embedding networks.

Every embedder takes aligned RGB uint8 crops of shape (N, S, S, 3) with S = ``input_size`` (the
lead's alignment produces them) and returns float32 (N, 128) embeddings of unit L2 norm.
Per-architecture pixel preprocessing lives in ``preprocess`` so training and inference share it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

ARCHS = ("sface", "facenet_inception_resnet", "facenet_mobilenet")


def build_net(arch: str, num_classes: int | None = None) -> nn.Module:
    """A freshly initialised network for ``arch`` (load a converted/trained state_dict into it)."""
    if arch == "facenet_mobilenet":
        from .nets.mobilenet_v1 import FaceNetMobileNet

        return FaceNetMobileNet(num_classes=num_classes)
    if arch == "facenet_inception_resnet":
        from .nets.inception_resnet_v1 import InceptionResnetV1

        return InceptionResnetV1(num_classes=num_classes)
    if arch == "sface":
        from .nets.sface import SFace

        if num_classes:
            raise ValueError("SFace is inference-only here; it has no training classifier")
        return SFace()
    raise ValueError(f"unknown embedder arch {arch!r}; expected one of {ARCHS}")


class Embedder:
    """Wraps a network in eval mode; subclasses define the input size and pixel normalisation."""

    # Defaults; the registry's ModelSpec (name, version) overrides them per loaded model.
    name: str = "embedder"
    version: str = "0"
    arch: str = ""
    input_size: int = 160

    def __init__(self, net: nn.Module, device: str | torch.device = "cpu", fp16: bool = False):
        self.device = torch.device(device)
        # fp16 only pays off on a GPU; CPU half convolutions are slow or unsupported.
        self.fp16 = bool(fp16) and self.device.type == "cuda"
        self.net = net.eval().to(self.device)
        if self.fp16:
            self.net = self.net.half()

    def _check(self, crops: np.ndarray) -> np.ndarray:
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        s = self.input_size
        if crops.ndim != 4 or crops.shape[1:] != (s, s, 3):
            raise ValueError(f"{type(self).__name__} expects (N,{s},{s},3) RGB crops, got {crops.shape}")
        return crops

    @staticmethod
    def preprocess(crops: np.ndarray) -> torch.Tensor:
        """(N,S,S,3) RGB uint8 -> NCHW float32 tensor on the CPU.

        A staticmethod in every subclass, so training code can use ``Cls.preprocess`` without a net.
        """
        raise NotImplementedError

    def embed(self, crops: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(N,S,S,3) RGB uint8 -> (N,128) float32 unit-norm embeddings."""
        crops = self._check(crops)
        out = []
        with torch.inference_mode():
            for i in range(0, len(crops), batch_size):
                x = self.preprocess(crops[i : i + batch_size]).to(self.device)
                x = x.half() if self.fp16 else x
                e = self.net(x).float()
                # Re-normalise in float32: an fp16 net's output is only approximately unit norm.
                out.append(torch.nn.functional.normalize(e, p=2, dim=1).cpu().numpy())
        if not out:
            return np.zeros((0, 128), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)


def _to_nchw(crops: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()


class SFaceEmbedder(Embedder):
    """OpenCV Zoo SFace: 112x112, BGR, raw 0-255 floats (normalisation is inside the graph)."""

    name = "sface"
    version = "2021dec"
    arch = "sface"
    input_size = 112

    def __init__(self, net: nn.Module, device: str | torch.device = "cpu", fp16: bool = False):
        # Inference runs on a copy with the batch norms folded into the convs and the head, in channels_last:
        # 19-25 instead of 26-30 ms per face on this project's 2-core CPU (same embeddings to ~1e-6).
        super().__init__(net.fused(), device, fp16)
        self.net = self.net.to(memory_format=torch.channels_last)

    @staticmethod
    def preprocess(crops: np.ndarray) -> torch.Tensor:
        return _to_nchw(np.asarray(crops)[..., ::-1])


class FaceNetEmbedder(Embedder):
    """FaceNet Inception-ResNetV1 (davidsandberg lineage): 160x160 RGB, per-image prewhitening."""

    name = "facenet-irv1"
    version = "keras-2024"
    arch = "facenet_inception_resnet"
    input_size = 160

    @staticmethod
    def preprocess(crops: np.ndarray) -> torch.Tensor:
        x = _to_nchw(crops)
        n = x[0].numel()
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True, unbiased=False).clamp_min(1.0 / n**0.5)
        return (x - mean) / std


class MobileFaceNetEmbedder(Embedder):
    """The seed's FaceNet on MobileNetV1: 160x160 RGB scaled to [0, 1] (x / 255, as the seed says).

    No mean subtraction: the first BatchNorm absorbs the offset. Training uses this same
    ``preprocess`` so trained weights see identical inputs at inference.
    """

    name = "facenet-mobilenet"
    version = "untrained"
    arch = "facenet_mobilenet"
    input_size = 160

    @staticmethod
    def preprocess(crops: np.ndarray) -> torch.Tensor:
        return _to_nchw(crops) / 255.0


EMBEDDER_CLASSES: dict[str, type[Embedder]] = {
    "sface": SFaceEmbedder,
    "facenet_inception_resnet": FaceNetEmbedder,
    "facenet_mobilenet": MobileFaceNetEmbedder,
}
