"""Loss functions for training face embedders (seed.md sections 1 and 3).

Two families share one calling convention so the training loop can swap them:

- metric losses take ``(embeddings, labels)``: :class:`BatchAllTripletLoss`,
  :class:`BatchHardTripletLoss`, :class:`CircleLoss`; :class:`TripletLoss` is
  the seed's explicit ``(anchor, positive, negative)`` form;
- classification heads own a weight matrix ``W`` (num_classes x in_features),
  take the PRE-normalisation feature vector and the labels, and return the
  mean cross-entropy over the batch: :class:`SoftmaxLoss`, :class:`LSoftmaxLoss`,
  :class:`SphereFaceLoss`, :class:`NormFaceLoss`, :class:`CosFaceLoss`,
  :class:`ArcFaceLoss`. Their ``logits(features)`` give the margin-free scores
  used for training accuracy.

:class:`FaceNetLoss` is the seed's combined objective. Which vector feeds which
loss (seed.md notes contradict themselves; this is the project's reading):
the triplet term sees the L2-normalised embedding, the one compared at
prediction time, so ``alpha = 0.2`` is a margin on the unit sphere; the
cross-entropy term sees the auxiliary classifier applied to the 128-d vector
BEFORE normalisation, as in the seed's model where the classifier hangs off
the BatchNorm1d output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ArcFaceLoss",
    "BatchAllTripletLoss",
    "BatchHardTripletLoss",
    "CircleLoss",
    "CosFaceLoss",
    "FaceNetLoss",
    "LSoftmaxLoss",
    "NormFaceLoss",
    "SoftmaxLoss",
    "SphereFaceLoss",
    "TripletLoss",
    "batch_all_triplets",
    "batch_hard_triplets",
    "pairwise_distances",
    "psi",
]


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt with a zero (not NaN/inf) gradient where ``x == 0``, e.g. d(a, a)."""
    pos = x > 0
    return torch.where(pos, torch.where(pos, x, torch.ones_like(x)).sqrt(), torch.zeros_like(x))


def pairwise_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Euclidean distance matrix ``D[i, j] = ||e_i - e_j||`` of a (B, D) batch."""
    sq = embeddings.pow(2).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * embeddings @ embeddings.t()).clamp_min(0.0)
    # the Gram formula leaves ~1e-7 on the diagonal; the true value is exactly 0
    d2 = d2 * (1.0 - torch.eye(len(embeddings), device=embeddings.device, dtype=embeddings.dtype))
    return _safe_sqrt(d2)


def _label_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive mask without the diagonal, negative mask) of a label vector."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


# ----------------------------------------------------------------------------------------------
# triplet family


class TripletLoss(nn.Module):
    """The seed's triplet loss on explicit (anchor, positive, negative) rows.

    ``pos = ||a - p||``, ``neg = ||a - n||`` (Euclidean). Keep the triplets with
    ``neg - pos < alpha`` (hard + semi-hard; the others have zero loss) and return

        L = sum_kept (pos - neg + alpha) / max(1, n_kept)

    i.e. the mean of ``max(pos - neg + alpha, 0)`` over the triplets that still
    violate the margin, not over the whole batch (easy triplets do not dilute it).
    """

    def __init__(self, alpha: float = 0.2) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        pos = _safe_sqrt((anchor - positive).pow(2).sum(-1))
        neg = _safe_sqrt((anchor - negative).pow(2).sum(-1))
        keep = (neg - pos) < self.alpha
        basic = (pos - neg + self.alpha)[keep]
        return basic.sum() / max(1, int(keep.sum()))


def batch_all_triplets(dist: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Indices (T, 3) of every valid triplet (a, p, n) with ``d(a,n) - d(a,p) < margin``.

    Valid: ``a != p``, ``label[a] == label[p]``, ``label[n] != label[a]``; a P x K batch has
    PK(K-1)(PK-K) of them. The margin test keeps hard and semi-hard triplets, as the seed does.
    """
    pos_mask, neg_mask = _label_masks(labels)
    valid = pos_mask[:, :, None] & neg_mask[:, None, :]
    violating = (dist[:, None, :] - dist[:, :, None]) < margin  # [a, p, n]: d(a,n) - d(a,p)
    return (valid & violating).nonzero()


def batch_hard_triplets(dist: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Indices (T, 3): for each anchor, its farthest positive and closest negative.

    Anchors without a positive or without a negative in the batch are skipped.
    """
    pos_mask, neg_mask = _label_masks(labels)
    anchors = (pos_mask.any(1) & neg_mask.any(1)).nonzero().squeeze(1)
    d = dist.detach()
    hardest_pos = d.masked_fill(~pos_mask, -math.inf).argmax(1)
    hardest_neg = d.masked_fill(~neg_mask, math.inf).argmin(1)
    return torch.stack([anchors, hardest_pos[anchors], hardest_neg[anchors]], 1)


class BatchAllTripletLoss(nn.Module):
    """Online batch-all mining over a P x K batch (Hermans et al. 2017).

    Over every valid triplet of the batch, keep those with ``d(a,n) - d(a,p) < margin``
    and return ``sum (d(a,p) - d(a,n) + margin) / max(1, n_kept)``: the seed's
    :class:`TripletLoss` rule applied to all PK(K-1)(PK-K) triplets.
    ``last_active_fraction`` records the share of valid triplets kept (a training signal).
    """

    def __init__(self, margin: float = 0.2) -> None:
        super().__init__()
        self.margin = margin
        self.last_active_fraction = 0.0

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        dist = pairwise_distances(embeddings)
        trip = batch_all_triplets(dist, labels, self.margin)
        pos_mask, neg_mask = _label_masks(labels)
        n_valid = int((pos_mask.sum(1) * neg_mask.sum(1)).sum())
        self.last_active_fraction = len(trip) / max(1, n_valid)
        a, p, n = trip.unbind(1)
        basic = dist[a, p] - dist[a, n] + self.margin
        return basic.sum() / max(1, len(trip))


class BatchHardTripletLoss(nn.Module):
    """Online batch-hard mining (Hermans et al. 2017).

    For each anchor a with at least one positive and one negative in the batch:
    ``l_a = max(max_p d(a,p) - min_n d(a,n) + margin, 0)``; the loss is the mean of ``l_a``
    over those anchors (PK triplets for a P x K batch).
    """

    def __init__(self, margin: float = 0.2) -> None:
        super().__init__()
        self.margin = margin
        self.last_active_fraction = 0.0

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        dist = pairwise_distances(embeddings)
        a, p, n = batch_hard_triplets(dist, labels).unbind(1)
        per_anchor = F.relu(dist[a, p] - dist[a, n] + self.margin)
        self.last_active_fraction = float((per_anchor > 0).float().mean()) if len(a) else 0.0
        return per_anchor.sum() / max(1, len(a))


class CircleLoss(nn.Module):
    """Circle loss, pair-wise form (Sun et al. 2020), on cosine similarities in the batch.

    For each anchor x with positive similarities ``s_p^i`` and negative ``s_n^j``:

        L_x = log[1 + sum_j exp(gamma a_n^j (s_n^j - D_n)) * sum_i exp(-gamma a_p^i (s_p^i - D_p))]

    with ``D_p = 1 - m``, ``D_n = m``, ``a_p = [1 + m - s_p]_+`` and ``a_n = [s_n + m]_+``
    (both weights detached: they are step sizes, not part of the gradient). The loss is
    the mean of ``L_x`` over anchors that have at least one positive and one negative.
    Defaults follow the paper's pair-wise setting (gamma = 80, m = 0.25).
    """

    def __init__(self, gamma: float = 80.0, m: float = 0.25) -> None:
        super().__init__()
        self.gamma = gamma
        self.m = m

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        e = F.normalize(embeddings, dim=1)
        sim = e @ e.t()
        pos_mask, neg_mask = _label_masks(labels)
        alpha_p = (1.0 + self.m - sim.detach()).clamp_min(0.0)
        alpha_n = (sim.detach() + self.m).clamp_min(0.0)
        logit_p = -self.gamma * alpha_p * (sim - (1.0 - self.m))
        logit_n = self.gamma * alpha_n * (sim - self.m)
        lse_p = logit_p.masked_fill(~pos_mask, -math.inf).logsumexp(1)
        lse_n = logit_n.masked_fill(~neg_mask, -math.inf).logsumexp(1)
        ok = pos_mask.any(1) & neg_mask.any(1)
        per_anchor = F.softplus(lse_p[ok] + lse_n[ok])
        return per_anchor.sum() / max(1, int(ok.sum()))


class FaceNetLoss(nn.Module):
    """The seed's FaceNet objective: ``L = triplet(normalize(f)) + ce_weight * CE(logits, y)``.

    ``features`` is the 128-d vector BEFORE L2 normalisation (``net.forward_features``);
    ``logits`` is the auxiliary classifier applied to that same pre-normalisation vector.
    The triplet term (seed rule, online-mined: ``miner="all"`` batch-all or ``"hard"``
    batch-hard) runs on ``F.normalize(features)``, the embedding used at prediction time.
    ``components`` holds the detached terms of the last call for logging.
    """

    def __init__(self, alpha: float = 0.2, miner: str = "all", ce_weight: float = 1.0) -> None:
        super().__init__()
        if miner not in ("all", "hard"):
            raise ValueError(f"miner must be 'all' or 'hard', not {miner!r}")
        self.triplet = BatchAllTripletLoss(alpha) if miner == "all" else BatchHardTripletLoss(alpha)
        self.ce_weight = ce_weight
        self.components: dict[str, float] = {}

    def forward(self, features: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        trip = self.triplet(F.normalize(features, p=2, dim=1), labels)
        ce = F.cross_entropy(logits, labels)
        self.components = {"triplet": float(trip.detach()), "ce": float(ce.detach())}
        return trip + self.ce_weight * ce


# ----------------------------------------------------------------------------------------------
# softmax / margin family


class _ClassifierLoss(nn.Module):
    """A bias-free classifier ``W`` (num_classes x in_features) trained by cross-entropy."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.xavier_uniform_(self.weight)

    def cosine(self, features: torch.Tensor) -> torch.Tensor:
        """cos(theta_j) between each feature and each class weight, clamped to [-1, 1]."""
        return (F.normalize(features, dim=1) @ F.normalize(self.weight, dim=1).t()).clamp(-1.0, 1.0)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Margin-free class scores (for accuracy and for inference-time classification)."""
        raise NotImplementedError

    def margin_logits(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.margin_logits(features, labels), labels)


def _replace_target(logits: torch.Tensor, labels: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``logits`` with column ``labels[i]`` of row i replaced by ``target[i]``."""
    onehot = F.one_hot(labels, logits.shape[1]).to(torch.bool)
    return torch.where(onehot, target[:, None], logits)


class SoftmaxLoss(_ClassifierLoss):
    """Plain softmax cross-entropy on a linear classifier with bias: ``z_j = W_j . x + b_j``."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__(in_features, num_classes)
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(features, self.weight, self.bias)

    def margin_logits(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.logits(features)


def _chebyshev(cos: torch.Tensor, m: int) -> torch.Tensor:
    """cos(m theta) as the Chebyshev polynomial T_m(cos theta): exact, smooth at cos = +-1."""
    prev, cur = torch.ones_like(cos), cos
    if m == 0:
        return prev
    for _ in range(m - 1):
        prev, cur = cur, 2.0 * cos * cur - prev
    return cur


def psi(cos: torch.Tensor, m: int) -> torch.Tensor:
    """L-Softmax target function: ``psi(theta) = (-1)^k cos(m theta) - 2k`` for theta in [k pi/m, (k+1) pi/m].

    Monotonically decreasing over [0, pi] (plain cos(m theta) is not), equal to
    cos(theta) when m = 1. ``k`` is piecewise constant, so it carries no gradient.
    """
    with torch.no_grad():
        theta = torch.acos(cos.clamp(-1.0, 1.0))
        k = torch.floor(m * theta / math.pi).clamp(0, m - 1)
        sign = 1.0 - 2.0 * torch.remainder(k, 2)
    return sign * _chebyshev(cos, m) - 2.0 * k


class LSoftmaxLoss(_ClassifierLoss):
    """Large-margin softmax (Liu et al. 2016, arXiv 1612.02295).

    ``z_j = ||W_j|| ||x|| cos(theta_j)`` for j != y and, for the true class,

        z_y = (beta ||W_y|| ||x|| cos(theta_y) + ||W_y|| ||x|| psi(theta_y)) / (1 + beta)

    with the monotonic ``psi`` extension (see :func:`psi`), integer ``m >= 1``. ``beta``
    is the paper's annealing weight (0 = the pure margin; large values ease the start
    of training and are decayed by the caller). ``m = 1`` is exactly bias-free softmax.
    """

    normalize_weight = False

    def __init__(self, in_features: int, num_classes: int, m: int = 2, beta: float = 0.0) -> None:
        super().__init__(in_features, num_classes)
        if int(m) != m or m < 1:
            raise ValueError("m must be an integer >= 1 (m = 1 is plain softmax)")
        self.m = int(m)
        self.beta = beta

    def _w(self) -> torch.Tensor:
        return F.normalize(self.weight, dim=1) if self.normalize_weight else self.weight

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self._w().t()

    def margin_logits(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self.logits(features)
        w_norm = self._w().norm(dim=1)[labels]
        x_norm = features.norm(dim=1)
        cos_y = self.cosine(features).gather(1, labels[:, None]).squeeze(1)
        scale = w_norm * x_norm
        target = (self.beta * scale * cos_y + scale * psi(cos_y, self.m)) / (1.0 + self.beta)
        return _replace_target(logits, labels, target)


class SphereFaceLoss(LSoftmaxLoss):
    """A-Softmax / SphereFace (Liu et al. 2017): L-Softmax with ``||W_j|| = 1``.

    ``z_j = ||x|| cos(theta_j)``, ``z_y = (beta ||x|| cos(theta_y) + ||x|| psi(theta_y)) / (1 + beta)``;
    the decision depends on the angle only; x is not normalised. Default m = 4 as in the
    paper; ``m = 1`` is the "modified softmax" (normalised W, no margin).
    """

    normalize_weight = True

    def __init__(self, in_features: int, num_classes: int, m: int = 4, beta: float = 0.0) -> None:
        super().__init__(in_features, num_classes, m=m, beta=beta)


class NormFaceLoss(_ClassifierLoss):
    """NormFace (Wang et al. 2017): ``z_j = s cos(theta_j)``, features and weights normalised.

    The fixed scale ``s`` lets the target probability approach 1 on the unit sphere.
    """

    def __init__(self, in_features: int, num_classes: int, s: float = 30.0) -> None:
        super().__init__(in_features, num_classes)
        self.s = s

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.s * self.cosine(features)

    def margin_logits(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.logits(features)


class CosFaceLoss(NormFaceLoss):
    """AM-Softmax / CosFace (Wang et al. 2018): additive cosine margin.

        L = -1/n sum_i log( e^{s(cos theta_y - m)} / (e^{s(cos theta_y - m)} + sum_{j!=y} e^{s cos theta_j}) )

    s = 30, m = 0.35 by default; m = 0 is NormFace with the same s.
    """

    def __init__(self, in_features: int, num_classes: int, s: float = 30.0, m: float = 0.35) -> None:
        super().__init__(in_features, num_classes, s=s)
        self.m = m

    def margin_logits(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.cosine(features)
        target = cos.gather(1, labels[:, None]).squeeze(1) - self.m
        return self.s * _replace_target(cos, labels, target)


class ArcFaceLoss(NormFaceLoss):
    """ArcFace (Deng et al. 2019): additive angular margin, ``z_y = s cos(theta_y + m)``.

    ``cos(theta + m)`` stops decreasing once ``theta + m > pi``, which would reward moving
    away from the class centre. Handling (as in InsightFace):

    - default: where ``theta_y > pi - m`` (i.e. ``cos theta_y <= cos(pi - m)``) the target
      is ``cos theta_y - m sin(m)`` instead (a CosFace-like margin that keeps it monotonic);
    - ``easy_margin=True``: apply the margin only where ``cos theta_y > 0``, else plain cos.

    s = 64, m = 0.5 by default; m = 0 is NormFace with the same s.
    """

    def __init__(
        self, in_features: int, num_classes: int, s: float = 64.0, m: float = 0.5, easy_margin: bool = False
    ) -> None:
        super().__init__(in_features, num_classes, s=s)
        self.m = m
        self.easy_margin = easy_margin
        self.cos_m, self.sin_m = math.cos(m), math.sin(m)
        self.th = math.cos(math.pi - m)
        self.mm = math.sin(math.pi - m) * m

    def margin_logits(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.cosine(features)
        cos_y = cos.gather(1, labels[:, None]).squeeze(1)
        # clamp before sqrt: d/dc sqrt(1 - c^2) is infinite at c = +-1
        sin_y = (1.0 - cos_y * cos_y).clamp_min(1e-12).sqrt()
        phi = cos_y * self.cos_m - sin_y * self.sin_m
        if self.easy_margin:
            phi = torch.where(cos_y > 0, phi, cos_y)
        else:
            phi = torch.where(cos_y > self.th, phi, cos_y - self.mm)
        return self.s * _replace_target(cos, labels, phi)


CLASSIFIER_LOSSES: dict[str, type[_ClassifierLoss]] = {
    "softmax": SoftmaxLoss,
    "lsoftmax": LSoftmaxLoss,
    "sphereface": SphereFaceLoss,
    "normface": NormFaceLoss,
    "cosface": CosFaceLoss,
    "arcface": ArcFaceLoss,
}
METRIC_LOSSES: dict[str, type[nn.Module]] = {
    "batch-all": BatchAllTripletLoss,
    "batch-hard": BatchHardTripletLoss,
    "circle": CircleLoss,
}
