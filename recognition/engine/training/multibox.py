"""RetinaFace's multibox loss (seed.md section 2): anchor matching, hard negative mining,
cross-entropy for face/background, smooth L1 for boxes and landmarks on positives only.

Anchors and the box / landmark coding come from :mod:`recognition.engine.detector`, so
training targets are exactly the inverse of what the detector decodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..detector import VARIANCE, box_iou, encode_boxes, encode_landmarks


def point_form(priors: torch.Tensor) -> torch.Tensor:
    """(cx, cy, w, h) -> (x1, y1, x2, y2)."""
    return torch.cat([priors[:, :2] - priors[:, 2:] / 2, priors[:, :2] + priors[:, 2:] / 2], 1)


@dataclass
class Matched:
    """Per-anchor targets of one image."""

    loc: torch.Tensor  # (A, 4) encoded box offsets
    landm: torch.Tensor  # (A, 10) encoded landmark offsets
    label: torch.Tensor  # (A,) long: 1 face, 0 background
    landm_mask: torch.Tensor  # (A,) bool: a face anchor whose face has landmarks


def match(
    truths: torch.Tensor,
    landms: torch.Tensor,
    has_landms: torch.Tensor,
    priors: torch.Tensor,
    threshold: float = 0.35,
    min_best_iou: float = 0.2,
) -> Matched:
    """Assign every anchor a ground-truth face (the classic RetinaFace / SSD rule).

    An anchor is positive when its best IoU with a face is >= ``threshold``; in addition every
    face claims its own best anchor (so small faces are never left unmatched) provided that
    IoU is at least ``min_best_iou``; faces below that are ignored. Boxes are normalised
    (x1, y1, x2, y2), landmarks (N, 10) normalised, priors (A, 4) (cx, cy, w, h).
    """
    a = priors.shape[0]
    empty = Matched(
        loc=priors.new_zeros(a, 4),
        landm=priors.new_zeros(a, 10),
        label=torch.zeros(a, dtype=torch.long, device=priors.device),
        landm_mask=torch.zeros(a, dtype=torch.bool, device=priors.device),
    )
    if truths.numel() == 0:
        return empty
    overlaps = box_iou(truths, point_form(priors))  # (N, A)
    best_prior_iou, best_prior = overlaps.max(1)
    valid = best_prior_iou >= min_best_iou
    if not valid.any():
        return empty
    best_truth_iou, best_truth = overlaps.max(0)
    best_truth_iou = best_truth_iou.index_fill(0, best_prior[valid], 2.0)  # force-match each face's best anchor
    best_truth = best_truth.clone()
    best_truth[best_prior[valid]] = torch.nonzero(valid).squeeze(1)
    label = (best_truth_iou >= threshold).long()
    return Matched(
        loc=encode_boxes(truths[best_truth], priors, VARIANCE),
        landm=encode_landmarks(landms[best_truth], priors, VARIANCE),
        label=label,
        landm_mask=(label > 0) & has_landms[best_truth],
    )


class MultiBoxLoss(nn.Module):
    """``L = loc_weight * L_box + L_cls + L_landmarks`` over a batch.

    - matching: :func:`match` per image (IoU ``threshold``, 0.35 as in RetinaFace);
    - ``L_cls``: cross-entropy (summed) over the positive anchors and the hardest negatives,
      ``neg_pos_ratio`` negatives per positive (7:1 by default; 3:1 is SSD's), ranked by their
      background loss;
    - ``L_box``: smooth L1 (summed) of encoded offsets over positive anchors;
    - both divided by the number of positives N; ``L_landmarks``: smooth L1 over positive
      anchors whose face has landmarks, divided by their count (faces without landmarks
      contribute nothing).
    ``components`` holds the detached terms of the last call.
    """

    def __init__(self, threshold: float = 0.35, neg_pos_ratio: float = 7.0, loc_weight: float = 2.0) -> None:
        super().__init__()
        self.threshold = threshold
        self.neg_pos_ratio = neg_pos_ratio
        self.loc_weight = loc_weight
        self.components: dict[str, float] = {}

    def targets(self, targets: list[torch.Tensor], priors: torch.Tensor) -> list[Matched]:
        """Match each image's (N, 15) target rows (box, 10 landmarks, has-landmarks flag)."""
        return [match(t[:, :4], t[:, 4:14], t[:, 14] > 0, priors, self.threshold) for t in targets]

    def forward(
        self,
        loc: torch.Tensor,
        conf: torch.Tensor,
        landm: torch.Tensor,
        targets: list[torch.Tensor],
        priors: torch.Tensor,
    ) -> torch.Tensor:
        m = self.targets([t.to(loc.device) for t in targets], priors.to(loc.device))
        loc_t = torch.stack([x.loc for x in m])
        landm_t = torch.stack([x.landm for x in m])
        label = torch.stack([x.label for x in m])
        landm_mask = torch.stack([x.landm_mask for x in m])
        pos = label > 0
        n_pos = pos.sum(1, keepdim=True)

        # hard negatives: highest background loss among the non-positives, ratio:1 per image
        with torch.no_grad():
            bg_loss = torch.logsumexp(conf, -1) - conf[..., 0]
            bg_loss = bg_loss.masked_fill(pos, -1.0)
            rank = bg_loss.argsort(1, descending=True).argsort(1)
            num_neg = (self.neg_pos_ratio * n_pos).clamp(max=pos.shape[1] - 1)
            neg = (rank < num_neg) & ~pos

        n = max(1, int(pos.sum()))
        loss_box = F.smooth_l1_loss(loc[pos], loc_t[pos], reduction="sum") / n
        sel = pos | neg
        loss_cls = F.cross_entropy(conf[sel], label[sel], reduction="sum") / n
        n_landm = max(1, int(landm_mask.sum()))
        loss_landm = F.smooth_l1_loss(landm[landm_mask], landm_t[landm_mask], reduction="sum") / n_landm
        self.components = {
            "box_loss": float(loss_box.detach()),
            "cls_loss": float(loss_cls.detach()),
            "landmark_loss": float(loss_landm.detach()),
            "positives": float(pos.sum()) / max(1, len(targets)),
        }
        return self.loc_weight * loss_box + loss_cls + loss_landm
