"""Passive liveness (presentation-attack detection) with Minivision's two MiniFASNets.

For each face box, two crops of the surrounding region are taken exactly as upstream's
``CropImage`` does (the box scaled by 2.7 and by 4.0 around its centre, shifted to stay inside
the image, resized to 80x80); MiniFASNetV2 scores the first, MiniFASNetV1SE the second, and the
two softmax outputs are averaged. The score is the averaged probability of class 1 ("real
face"), in [0, 1]: high = live, low = an attack (a print, a screen).

The weights are optional (``fetch-weights --liveness`` or ``--from DIR``); :func:`liveness_installed`
says cheaply whether they are there, and :meth:`LivenessModel.load` raises a
:class:`~recognition.engine.registry.WeightsError` that says how to install them when they are not.

The models were trained by their authors on their own data (print, screen and 3D-mask attacks);
MODELS.md has what we measured on NUAA prints and the threshold we ship.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from . import registry
from .nets.minifasnet import ARCHS, INPUT_SIZE, LIVE_CLASS, fuse_batchnorm

# Calibrated by bench/liveness_bench.py on NUAA subjects 0001-0006 (MODELS.md, "Liveness"): the lowest
# threshold at which no calibration print passes (it is also their equal-error point); a face scoring
# below it is treated as an attack. NUAA prints score 1e-11..0.021, live webcam faces 0.04..1; about 1% of
# genuine LFW press photos (mostly ones with black borders) score below it as well.
DEFAULT_LIVENESS_THRESHOLD = registry.DEFAULT_LIVENESS_THRESHOLD


def liveness_installed() -> bool:
    """Whether both liveness models are in the weights cache (a file check, no hashing)."""
    return registry.liveness_installed()


def upstream_bbox(box: Sequence[float]) -> tuple[int, int, int, int]:
    """Our ``[x1, y1, x2, y2]`` box as upstream's integer ``(x, y, w, h)``.

    Upstream's own detector returns continuous corners and truncates them the same way
    (``int(left), int(top), int(right - left + 1), int(bottom - top + 1)``); the models were
    tuned on crops made from such boxes, so we follow it to the pixel.
    """
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    return int(x1), int(y1), int(x2 - x1 + 1), int(y2 - y1 + 1)


def crop_window(src_w: int, src_h: int, bbox: tuple[int, int, int, int], scale: float) -> tuple[int, int, int, int]:
    """Upstream's ``CropImage._get_new_box``: the inclusive pixel window ``(x1, y1, x2, y2)``.

    The box is scaled around its centre by ``scale``, or less when that would not fit the image
    (the scale is capped so the window is at most ``src - 1`` pixels), then shifted (not clipped)
    back inside. The corners are truncated to int, as upstream does.
    """
    x, y, box_w, box_h = bbox
    # A degenerate box would divide by zero upstream; one pixel keeps the geometry defined.
    box_w, box_h = max(box_w, 1), max(box_h, 1)
    scale = min((src_h - 1) / box_h, min((src_w - 1) / box_w, scale))
    new_w, new_h = box_w * scale, box_h * scale
    cx, cy = box_w / 2 + x, box_h / 2 + y
    left, top = cx - new_w / 2, cy - new_h / 2
    right, bottom = cx + new_w / 2, cy + new_h / 2
    if left < 0:
        right -= left
        left = 0
    if top < 0:
        bottom -= top
        top = 0
    if right > src_w - 1:
        left -= right - src_w + 1
        right = src_w - 1
    if bottom > src_h - 1:
        top -= bottom - src_h + 1
        bottom = src_h - 1
    return int(left), int(top), int(right), int(bottom)


def crop_face(image: np.ndarray, box: Sequence[float], scale: float, size: int = INPUT_SIZE) -> np.ndarray:
    """The ``size`` x ``size`` crop one model sees, in the channel order of ``image``
    (upstream: inclusive window, ``cv2.resize`` with its default bilinear interpolation)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = crop_window(w, h, upstream_bbox(box), scale)
    return cv2.resize(image[y1 : y2 + 1, x1 : x2 + 1], (size, size))


class LivenessModel:
    """MiniFASNetV2 (crop x2.7) + MiniFASNetV1SE (crop x4.0), softmax-averaged.

    ``score(image, boxes)`` -> the live probability per box, every face of the call in one batch
    per network. Images are the engine's RGB uint8 arrays (pass ``bgr=True`` for OpenCV's order);
    the networks themselves want BGR 0-255 as float, which this class takes care of.
    """

    def __init__(self, nets: Sequence[tuple[float, torch.nn.Module]], device: torch.device,
                 channels_last: bool = True) -> None:
        self.nets = [(float(scale), net.to(device).eval()) for scale, net in nets]
        self.device = device
        # Measured on a 2-core CPU with the batch-norms folded: 1 face 9-10 -> 6 ms, 8 faces 4.3 -> 1.9-2.9
        # ms per face (bench/liveness_bench.py prints the figure on the machine at hand).
        self.channels_last = channels_last
        if channels_last:
            for _, net in self.nets:
                net.to(memory_format=torch.channels_last)

    @classmethod
    def from_state_dicts(cls, state_dicts: dict[str, dict[str, torch.Tensor]],
                         device: str | torch.device = "cpu", fuse: bool = True,
                         channels_last: bool = True) -> LivenessModel:
        """``state_dicts``: liveness model name -> its converted state_dict (loaded strictly)."""
        nets = []
        for name, sd in state_dicts.items():
            spec = registry.get_spec(name)
            net = ARCHS[spec.arch]()
            net.load_state_dict(sd, strict=True)
            net.eval()
            # Folding the batch-norms leaves ~half the kernels; the results agree to float rounding.
            nets.append((float(spec.notes["crop_scale"]), fuse_batchnorm(net) if fuse else net))
        return cls(nets, torch.device(device), channels_last=channels_last)

    @classmethod
    def load(cls, device: str | torch.device | None = None, fuse: bool = True) -> LivenessModel:
        """Both models from the weights cache; a clear :class:`WeightsError` when not installed."""
        if not registry.liveness_installed():
            raise registry.WeightsError(
                f"liveness is not installed (no MiniFASNet weights in {registry.cache_dir()}); "
                + registry.LIVENESS_INSTALL_HINT
            )
        dev = torch.device(device) if device is not None else torch.device("cpu")
        return cls.from_state_dicts({n: registry.load_state_dict(s) for n, s in registry.LIVENESS.items()},
                                    device=dev, fuse=fuse)

    def crops(self, image: np.ndarray, boxes: np.ndarray | Sequence[Sequence[float]], bgr: bool = False
              ) -> list[np.ndarray]:
        """Per network, the (N, 80, 80, 3) BGR uint8 crops of the boxes."""
        out = []
        for scale, _ in self.nets:
            batch = np.stack([crop_face(image, b, scale) for b in boxes])
            # Cropping and resizing act per channel, so flipping RGB->BGR after is the same as before.
            out.append(batch if bgr else batch[..., ::-1])
        return out

    @torch.inference_mode()
    def score_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Live probability per face from :meth:`crops`-style batches (one per network)."""
        total: torch.Tensor | None = None
        for (_, net), batch in zip(self.nets, crops, strict=True):
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device).permute(0, 3, 1, 2).float()
            x = x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
            p = net(x).softmax(dim=1)[:, LIVE_CLASS]
            total = p if total is None else total + p
        assert total is not None
        return (total / len(self.nets)).clamp_(0.0, 1.0).cpu().numpy().astype(np.float64)

    def score(self, image: np.ndarray, boxes: np.ndarray | Sequence[Sequence[float]], bgr: bool = False
              ) -> np.ndarray:
        """Live probability in [0, 1] per box (``[x1, y1, x2, y2]`` in pixels of ``image``)."""
        if len(boxes) == 0:
            return np.zeros((0,), np.float64)
        return self.score_crops(self.crops(image, boxes, bgr=bgr))

    def score_many(self, items: Sequence[tuple[np.ndarray, np.ndarray | Sequence[Sequence[float]]]],
                   bgr: bool = False) -> list[np.ndarray]:
        """:meth:`score` over several (image, boxes) pairs, all their faces in one batch per network."""
        counts = [len(boxes) for _, boxes in items]
        per_net: list[list[np.ndarray]] = [[] for _ in self.nets]
        for image, boxes in items:
            if len(boxes):
                for k, batch in enumerate(self.crops(image, boxes, bgr=bgr)):
                    per_net[k].append(batch)
        if not sum(counts):
            return [np.zeros((0,), np.float64) for _ in items]
        scores = self.score_crops([np.concatenate(batches) for batches in per_net])
        return list(np.split(scores, np.cumsum(counts)[:-1]))
