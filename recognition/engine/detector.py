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

from .detection_policy import DetectionPolicy
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


def merge_detections(
    parts: Sequence[Detections], iou_threshold: float, max_detections: int | None = None
) -> Detections:
    """Union of detections of one image (from several passes, all in the same pixels), with
    non-maximum suppression across them: the same face seen twice keeps its highest-scoring box.
    Sorted by score; a single part is returned unchanged."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return Detections.empty()
    if len(parts) == 1:
        return parts[0]
    boxes = np.concatenate([p.boxes for p in parts])
    scores = np.concatenate([p.scores for p in parts])
    landmarks = np.concatenate([p.landmarks for p in parts])
    keep = nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou_threshold).numpy()
    if max_detections is not None:
        keep = keep[:max_detections]
    return Detections(boxes=boxes[keep], scores=scores[keep], landmarks=landmarks[keep])


def merge_passes(
    coarse: Detections,
    fine: Detections,
    fine_max_width: float,
    iou_threshold: float,
    max_detections: int | None = None,
    head_margin: float = 0.25,
) -> Detections:
    """Merge a high-resolution (fine) pass into the ordinary (coarse) one, both in original pixels.

    The coarse pass owns the big faces. A fine detection ``fine_max_width`` wide or wider is dropped,
    and so is one whose centre lies on the head of a coarse detection at least 1.5x wider (inside its
    box grown by ``head_margin`` of its width and height on every side): at high resolution
    RetinaFace reports parts of a close face (an eye and a brow, an ear, half a face) as faces of
    their own, with high scores and too little overlap for NMS to remove them. The rest is merged by
    :func:`merge_detections` (NMS across the passes).
    """
    if len(fine):
        widths = fine.boxes[:, 2] - fine.boxes[:, 0]
        keep = widths < fine_max_width
        if len(coarse) and keep.any():
            cx = (fine.boxes[:, None, 0] + fine.boxes[:, None, 2]) / 2
            cy = (fine.boxes[:, None, 1] + fine.boxes[:, None, 3]) / 2
            x1, y1, x2, y2 = (coarse.boxes[None, :, i] for i in range(4))
            mx, my = head_margin * (x2 - x1), head_margin * (y2 - y1)
            on_head = (cx >= x1 - mx) & (cx <= x2 + mx) & (cy >= y1 - my) & (cy <= y2 + my)
            keep &= ~(on_head & (x2 - x1 >= 1.5 * widths[:, None])).any(axis=1)
        fine = Detections(boxes=fine.boxes[keep], scores=fine.scores[keep], landmarks=fine.landmarks[keep])
    return merge_detections([coarse, fine], iou_threshold, max_detections)


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

    ``policy`` (a :class:`DetectionPolicy`, a preset name such as ``"small_faces"``,
    or None for :data:`STANDARD`) sets the default for ``detect``; each call may
    pass its own. A policy with ``min_face_px`` adds a high-resolution pass for
    images larger than ``max_side``, merged with the ordinary one by :func:`merge_passes`
    (see :mod:`.detection_policy`); the standard policy is the single pass above.

    ``model`` is never modified (mode, device, dtype): inference runs on a private
    copy with BatchNorm folded into the convs, in channels_last layout on
    ``device`` (~25% less CPU time). The copy is rebuilt whenever the model's
    tensors change in place (an optimiser step, ``load_state_dict``, ``.to()``),
    so a detector built during training sees current weights; after swapping
    whole parameter objects, build a new detector.
    """

    PRIOR_CACHE_SIZE = 32
    FINE_BATCH_PIXELS = 8 * 1024 * 1024  # input pixels per forward pass of the fine (high-resolution) pass

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
        policy: DetectionPolicy | str | None = None,
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
        self.policy = DetectionPolicy.parse(policy)
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

    def _resize(self, image: np.ndarray, max_side: int) -> np.ndarray:
        h, w = image.shape[:2]
        scale = max_side / max(h, w)
        if scale >= 1.0:
            return image
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    @staticmethod
    def _rescale(image: np.ndarray, scale: float) -> np.ndarray:
        h, w = image.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        if size == (w, h):
            return image
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR)

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

    def detect(self, images: Sequence[np.ndarray], policy: DetectionPolicy | str | None = None) -> list[Detections]:
        """One :class:`Detections` per RGB uint8 image, in original pixels, sorted by score.

        ``policy``: a :class:`DetectionPolicy` or preset name; None uses the detector's own
        (``self.policy``, :data:`STANDARD` unless set). Zero-size images give empty detections;
        anything but (H, W, 3) uint8 is a ValueError.
        """
        policy = self.policy if policy is None else DetectionPolicy.parse(policy)
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
            self._detect(net, images, todo, results, max_side=policy.coarse_side(self.max_side))
            if policy.min_face_px is not None:
                self._fine_pass(net, images, todo, results, policy)
        return results

    def _fine_pass(
        self,
        net: torch.nn.Module,
        images: Sequence[np.ndarray],
        todo: list[int],
        results: list[Detections],
        policy: DetectionPolicy,
    ) -> None:
        """The policy's high-resolution pass for the images that need it, merged into ``results``."""
        groups: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}
        coarse_side = policy.coarse_side(self.max_side)
        for k in todo:
            h, w = images[k].shape[:2]
            scale = policy.fine_scale(h, w, coarse_side)
            if scale is not None:
                fine = self._rescale(images[k], scale)
                groups.setdefault(fine.shape[:2], []).append((k, fine))
        # Same-size images share a forward pass (padding mixed sizes would waste the most here), in
        # chunks bounded by FINE_BATCH_PIXELS.
        for (h, w), members in groups.items():
            chunk = max(1, self.FINE_BATCH_PIXELS // (h * w))
            for i in range(0, len(members), chunk):
                part = members[i : i + chunk]
                fine = [Detections.empty() for _ in images]
                self._detect(net, images, [k for k, _ in part], fine, net_images=[im for _, im in part])
                for k, _ in part:
                    h0, w0 = images[k].shape[:2]
                    limit = policy.handoff_px / DetectionPolicy.coarse_scale(h0, w0, coarse_side)
                    results[k] = merge_passes(results[k], fine[k], limit, self.nms_threshold, self.max_detections)

    def _detect(
        self,
        net: torch.nn.Module,
        images: Sequence[np.ndarray],
        todo: list[int],
        results: list[Detections],
        net_images: Sequence[np.ndarray] | None = None,
        max_side: int | None = None,
    ) -> None:
        """One forward pass over ``images[k] for k in todo``, each shrunk to ``max_side`` (default: the
        detector's) or, when given, replaced by its rescaled copy in ``net_images``; results in original pixels."""
        side = self.max_side if max_side is None else max_side
        resized = list(net_images) if net_images is not None else [self._resize(images[k], side) for k in todo]
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
