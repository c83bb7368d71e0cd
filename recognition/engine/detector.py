"""RetinaFace anchors, box/landmark coding, NMS and the batched face detector.

Coordinates inside this module are normalised to the network input size
(0..1) until the very end, where they are scaled to input pixels and then
back to the pixels of the original image.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import cv2
import numpy as np
import torch

from .retinaface import RetinaFace, fuse_batchnorm
from .types import Detections

MIN_SIZES: tuple[tuple[int, ...], ...] = ((16, 32), (64, 128), (256, 512))
STEPS: tuple[int, ...] = (8, 16, 32)
VARIANCE: tuple[float, float] = (0.1, 0.2)
MEAN_BGR: tuple[int, int, int] = (104, 117, 123)


def prior_boxes(
    height: int,
    width: int,
    min_sizes: Sequence[Sequence[int]] = MIN_SIZES,
    steps: Sequence[int] = STEPS,
    clip: bool = False,
) -> torch.Tensor:
    """Anchors [A, 4] as (cx, cy, w, h) normalised by the input size.

    Order matches the heads: level by level, then row-major over the feature map
    (ceil(size / step) cells, which is what the stride-2 convs produce), then one
    anchor per min size.
    """
    levels = []
    for sizes, step in zip(min_sizes, steps, strict=True):
        fh, fw = math.ceil(height / step), math.ceil(width / step)
        cy = (torch.arange(fh, dtype=torch.float32) + 0.5) * step / height
        cx = (torch.arange(fw, dtype=torch.float32) + 0.5) * step / width
        cy, cx = torch.meshgrid(cy, cx, indexing="ij")
        n, k = fh * fw, len(sizes)
        centres = torch.stack([cx.reshape(-1), cy.reshape(-1)], dim=1).repeat_interleave(k, dim=0)
        wh = torch.tensor([[s / width, s / height] for s in sizes], dtype=torch.float32).repeat(n, 1)
        levels.append(torch.cat([centres, wh], dim=1))
    priors = torch.cat(levels, dim=0)
    return priors.clamp_(0.0, 1.0) if clip else priors


def decode_boxes(loc: torch.Tensor, priors: torch.Tensor, variances: Sequence[float] = VARIANCE) -> torch.Tensor:
    """Regression offsets [..., A, 4] -> boxes (x1, y1, x2, y2), normalised."""
    centre = priors[..., :2] + loc[..., :2] * variances[0] * priors[..., 2:]
    size = priors[..., 2:] * torch.exp(loc[..., 2:] * variances[1])
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)


def encode_boxes(boxes: torch.Tensor, priors: torch.Tensor, variances: Sequence[float] = VARIANCE) -> torch.Tensor:
    """Inverse of :func:`decode_boxes`: boxes (x1, y1, x2, y2) normalised -> targets [..., A, 4]."""
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    size = boxes[..., 2:] - boxes[..., :2]
    g_c = (centre - priors[..., :2]) / (variances[0] * priors[..., 2:])
    g_s = torch.log(size / priors[..., 2:]) / variances[1]
    return torch.cat([g_c, g_s], dim=-1)


def decode_landmarks(pre: torch.Tensor, priors: torch.Tensor, variances: Sequence[float] = VARIANCE) -> torch.Tensor:
    """Landmark offsets [..., A, 10] -> five (x, y) points [..., A, 10], normalised."""
    shape = pre.shape
    pts = pre.reshape(*shape[:-1], 5, 2)
    out = priors[..., None, :2] + pts * variances[0] * priors[..., None, 2:]
    return out.reshape(shape)


def encode_landmarks(landms: torch.Tensor, priors: torch.Tensor, variances: Sequence[float] = VARIANCE) -> torch.Tensor:
    """Inverse of :func:`decode_landmarks`: points [..., A, 10] normalised -> targets [..., A, 10]."""
    shape = landms.shape
    pts = landms.reshape(*shape[:-1], 5, 2)
    out = (pts - priors[..., None, :2]) / (variances[0] * priors[..., None, 2:])
    return out.reshape(shape)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU [len(a), len(b)] of (x1, y1, x2, y2) boxes (continuous coordinates, no +1)."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), 0.0)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression; indices of the kept boxes, highest score first.

    A box is dropped when its IoU with an already kept, higher-scoring box is
    strictly greater than ``iou_threshold``. Ties in score keep the lower index.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    ordered = boxes[order].float()
    # The overlap matrix as bools, built in row blocks to bound the float temporaries.
    over = torch.cat([box_iou(ordered[i : i + 1024], ordered) > iou_threshold for i in range(0, len(order), 1024)])
    keep = []
    remaining = torch.arange(order.numel(), device=boxes.device)
    # One pass per kept box (few), each dropping everything it suppresses.
    while remaining.numel() > 0:
        i = remaining[0]
        keep.append(i)
        rest = remaining[1:]
        remaining = rest[~over[i, rest]]
    return order[torch.stack(keep)]


class RetinaFaceDetector:
    """Batched face detection with a :class:`RetinaFace` model.

    ``detect`` takes RGB uint8 images of any sizes and returns one
    :class:`Detections` per image (boxes, scores, landmarks in the pixels of
    that image, sorted by score). Images whose long side exceeds ``max_side``
    are downscaled for the network; a batch of different sizes is padded
    bottom/right with the mean colour to a common size and run in one forward
    pass. A detection is kept only when its box centre lies inside the image
    (padding can otherwise produce strays). ``fp16`` applies on CUDA only: CPU
    half-precision convolutions are slow, so CPU always runs float32.

    ``model`` is never modified (mode, device, dtype): inference runs on a private
    copy with BatchNorm folded into the convs, in channels_last layout on
    ``device`` (~25% less CPU time). The copy is rebuilt whenever the model's
    tensors change in place (an optimiser step, ``load_state_dict``, ``.to()``),
    so a detector built during training sees current weights; after swapping
    whole parameter objects, build a new detector.
    """

    PRIOR_CACHE_SIZE = 32

    def __init__(
        self,
        model: RetinaFace,
        device: str | torch.device = "cpu",
        score_threshold: float = 0.6,
        nms_threshold: float = 0.4,
        max_side: int = 640,
        fp16: bool = False,
        pre_nms_top_k: int = 5000,
        max_detections: int = 750,
    ) -> None:
        self.device = torch.device(device)
        self.fp16 = bool(fp16) and self.device.type == "cuda"
        self.dtype = torch.float16 if self.fp16 else torch.float32
        self.model = model
        self._net: torch.nn.Module | None = None
        self._tensors: list[torch.Tensor] = []
        self._net_signature: tuple = ()
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.max_side = int(max_side)
        self.pre_nms_top_k = int(pre_nms_top_k)
        self.max_detections = int(max_detections)
        self._priors: OrderedDict[tuple[int, int], torch.Tensor] = OrderedDict()
        self._mean = torch.tensor(MEAN_BGR, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor], **kw) -> RetinaFaceDetector:
        model = RetinaFace()
        model.load_state_dict(sd, strict=True)
        return cls(model, **kw)

    def _signature(self) -> tuple:
        # Version counters move on every in-place write (optimiser steps, load_state_dict), data
        # pointers on .to(); the tensor list is cached because walking the module tree costs ms.
        return tuple((t.data_ptr(), t._version) for t in self._tensors)

    def _inference_net(self) -> torch.nn.Module:
        """The fused, channels_last copy of ``model``, rebuilt when the model's tensors changed."""
        if self._net is None or self._signature() != self._net_signature:
            self._tensors = list(itertools.chain(self.model.parameters(), self.model.buffers()))
            with torch.no_grad():
                net = fuse_batchnorm(self.model)
            self._net = net.to(device=self.device, dtype=self.dtype, memory_format=torch.channels_last)
            self._net_signature = self._signature()
        return self._net

    def priors(self, height: int, width: int) -> torch.Tensor:
        """Anchors for an input size, cached (LRU) on the detector's device."""
        key = (height, width)
        if key in self._priors:
            self._priors.move_to_end(key)
        else:
            self._priors[key] = prior_boxes(height, width).to(self.device)
            if len(self._priors) > self.PRIOR_CACHE_SIZE:
                self._priors.popitem(last=False)
        return self._priors[key]

    def _resize(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        scale = self.max_side / max(h, w)
        if scale >= 1.0:
            return image
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    def _batch(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """RGB uint8 images -> [N, 3, H, W] BGR minus mean, padded bottom/right with zeros (= the mean)."""
        height = max(im.shape[0] for im in images)
        width = max(im.shape[1] for im in images)
        batch = np.empty((len(images), height, width, 3), np.uint8)
        if any(im.shape[:2] != (height, width) for im in images):
            batch[:] = MEAN_BGR[::-1]  # RGB order of the mean
        for k, im in enumerate(images):
            batch[k, : im.shape[0], : im.shape[1]] = im
        x = torch.from_numpy(batch).to(self.device, non_blocking=True)  # uint8: a small upload
        # RGB -> BGR while still NHWC (flipping the permuted view is ~50x slower on CPU); the
        # permute then yields channels_last, the layout the inference copy runs in.
        x = x.flip(-1).permute(0, 3, 1, 2).float().sub_(self._mean)
        return x.to(self.dtype)

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """One :class:`Detections` per RGB uint8 image, in original pixels, sorted by score.

        Zero-size images give empty detections; anything but (H, W, 3) uint8 is a ValueError.
        """
        for k, im in enumerate(images):
            if not isinstance(im, np.ndarray) or im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 3:
                desc = f"{im.dtype} {im.shape}" if isinstance(im, np.ndarray) else type(im).__name__
                raise ValueError(f"image {k}: expected an RGB uint8 array of shape (H, W, 3), got {desc}")
        results: list[Detections] = [Detections.empty() for _ in images]
        todo = [k for k, im in enumerate(images) if im.shape[0] > 0 and im.shape[1] > 0]
        if not todo:
            return results
        net = self._inference_net()  # outside inference mode: it may build parameters
        with torch.inference_mode():
            self._detect(net, images, todo, results)
        return results

    def _detect(
        self, net: torch.nn.Module, images: Sequence[np.ndarray], todo: list[int], results: list[Detections]
    ) -> None:
        resized = [self._resize(images[k]) for k in todo]
        x = self._batch(resized)
        height, width = x.shape[-2:]
        loc, conf, landms = net(x)
        priors = self.priors(height, width)
        scores = conf.float().softmax(dim=-1)[..., 1]
        px = torch.tensor([width, height], dtype=torch.float32, device=self.device)
        for b, k in enumerate(todo):
            results[k] = self._postprocess(
                loc[b].float(), scores[b], landms[b].float(), priors, px, resized[b].shape, images[k].shape
            )

    def _postprocess(
        self,
        loc: torch.Tensor,
        scores: torch.Tensor,
        landms: torch.Tensor,
        priors: torch.Tensor,
        px: torch.Tensor,
        net_shape: tuple[int, ...],
        orig_shape: tuple[int, ...],
    ) -> Detections:
        idx = torch.nonzero(scores > self.score_threshold).squeeze(1)
        if idx.numel() > self.pre_nms_top_k:
            idx = idx[scores[idx].topk(self.pre_nms_top_k).indices]
        boxes = decode_boxes(loc[idx], priors[idx]) * px.repeat(2)
        points = decode_landmarks(landms[idx], priors[idx]).reshape(-1, 5, 2) * px
        sc = scores[idx]
        # Drop strays whose centre falls in the padding (or outside the image).
        nh, nw = net_shape[:2]
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        inside = (centre[:, 0] >= 0) & (centre[:, 0] < nw) & (centre[:, 1] >= 0) & (centre[:, 1] < nh)
        boxes, points, sc = boxes[inside], points[inside], sc[inside]
        keep = nms(boxes, sc, self.nms_threshold)[: self.max_detections]
        boxes, points, sc = boxes[keep], points[keep], sc[keep]
        # Back to original pixels (per-axis, since resizing rounds each side).
        sx, sy = orig_shape[1] / nw, orig_shape[0] / nh
        boxes = boxes * torch.tensor([sx, sy, sx, sy], device=boxes.device)
        points = points * torch.tensor([sx, sy], device=points.device)
        return Detections(
            boxes=boxes.cpu().numpy().astype(np.float32),
            scores=sc.cpu().numpy().astype(np.float32),
            landmarks=points.cpu().numpy().astype(np.float32),
        )
