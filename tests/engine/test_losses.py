"""Losses against deliberately naive per-sample references, margin reductions, miners, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recognition.engine.training import losses as L

torch.set_num_threads(2)


def _rng_batch(seed: int, n: int = 12, d: int = 8, classes: int = 5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * 3.0
    y = torch.arange(n) % classes
    return x, y[torch.randperm(n, generator=g)]


def _log_softmax_ce(rows: list[list[float]], labels: list[int]) -> float:
    """Mean cross-entropy written out with math.exp, one sample at a time."""
    total = 0.0
    for z, y in zip(rows, labels, strict=True):
        top = max(z)
        total += -(z[y] - top - math.log(sum(math.exp(v - top) for v in z)))
    return total / len(rows)


def _norm(v: np.ndarray) -> float:
    return math.sqrt(sum(float(t) * float(t) for t in v))


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    c = sum(float(p) * float(q) for p, q in zip(a, b, strict=True)) / (_norm(a) * _norm(b))
    return max(-1.0, min(1.0, c))


def _naive_psi(theta: float, m: int) -> float:
    k = min(int(math.floor(m * theta / math.pi)), m - 1)
    return (-1) ** k * math.cos(m * theta) - 2 * k


def _naive_classifier_loss(kind: str, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, **hp) -> float:
    xs, ws, ys = x.numpy(), w.numpy(), [int(v) for v in y]
    rows = []
    for i, xi in enumerate(xs):
        row = []
        for j, wj in enumerate(ws):
            c = _cos(xi, wj)
            theta = math.acos(c)
            target = j == ys[i]
            if kind == "lsoftmax":
                scale = _norm(wj) * _norm(xi)
                row.append(scale * (_naive_psi(theta, hp["m"]) if target else c))
            elif kind == "sphereface":
                scale = _norm(xi)
                row.append(scale * (_naive_psi(theta, hp["m"]) if target else c))
            elif kind == "normface":
                row.append(hp["s"] * c)
            elif kind == "cosface":
                row.append(hp["s"] * (c - hp["m"] if target else c))
            elif kind == "arcface":
                if not target:
                    row.append(hp["s"] * c)
                elif theta + hp["m"] <= math.pi:  # the margin keeps cos decreasing: use it
                    row.append(hp["s"] * math.cos(theta + hp["m"]))
                else:
                    row.append(hp["s"] * (c - hp["m"] * math.sin(hp["m"])))
        rows.append(row)
    return _log_softmax_ce(rows, ys)


CLASSIFIER_CASES = [
    ("lsoftmax", {"m": 1}),
    ("lsoftmax", {"m": 2}),
    ("lsoftmax", {"m": 3}),
    ("sphereface", {"m": 4}),
    ("sphereface", {"m": 2}),
    ("normface", {"s": 30.0}),
    ("cosface", {"s": 30.0, "m": 0.35}),
    ("arcface", {"s": 64.0, "m": 0.5}),
    ("arcface", {"s": 16.0, "m": 1.2}),  # large m: many targets fall in the theta + m > pi branch
]


@pytest.mark.parametrize("kind,hp", CLASSIFIER_CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_classifier_losses_match_naive_reference(kind, hp, seed):
    x, y = _rng_batch(seed)
    loss = L.CLASSIFIER_LOSSES[kind](x.shape[1], 5, **hp).double()
    got = float(loss(x, y).detach())
    want = _naive_classifier_loss(kind, x, y, loss.weight.detach(), **hp)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_arcface_large_margin_case_really_hits_threshold_branch():
    x, y = _rng_batch(1)
    head = L.ArcFaceLoss(8, 5, s=16.0, m=1.2).double()
    cos_y = head.cosine(x).gather(1, y[:, None]).squeeze(1)
    assert bool((cos_y <= head.th).any()) and bool((cos_y > head.th).any())


def test_arcface_easy_margin():
    x, y = _rng_batch(2)
    head = L.ArcFaceLoss(8, 5, s=10.0, m=0.5, easy_margin=True).double()
    cos = head.cosine(x)
    cos_y = cos.gather(1, y[:, None]).squeeze(1)
    assert bool((cos_y > 0).any()) and bool((cos_y <= 0).any())
    z = head.margin_logits(x, y).gather(1, y[:, None]).squeeze(1) / 10.0
    want = torch.where(cos_y > 0, torch.cos(torch.acos(cos_y) + 0.5), cos_y)
    assert torch.allclose(z, want, atol=1e-12)


def test_softmax_loss_is_cross_entropy_with_bias():
    x, y = _rng_batch(3)
    head = L.SoftmaxLoss(8, 5).double()
    with torch.no_grad():
        head.bias.copy_(torch.randn(5, dtype=torch.float64))
    rows = [[float(xi @ wj + b) for wj, b in zip(head.weight.detach(), head.bias.detach(), strict=True)] for xi in x]
    assert float(head(x, y).detach()) == pytest.approx(_log_softmax_ce(rows, [int(v) for v in y]), rel=1e-12)


# -------------------------------------------------------------------------------- reductions


def test_margins_reduce_to_their_base_softmax():
    x, y = _rng_batch(4)
    for s in (1.0, 30.0):
        norm = L.NormFaceLoss(8, 5, s=s).double()
        cos = L.CosFaceLoss(8, 5, s=s, m=0.0).double()
        arc = L.ArcFaceLoss(8, 5, s=s, m=0.0).double()
        arc_easy = L.ArcFaceLoss(8, 5, s=s, m=0.0, easy_margin=True).double()
        for head in (cos, arc, arc_easy):
            head.weight.data.copy_(norm.weight.data)
            assert torch.equal(head.margin_logits(x, y), norm.logits(x))
            assert torch.equal(head(x, y), norm(x, y))
    # s = 1: plain softmax over cosines
    base = L.NormFaceLoss(8, 5, s=1.0).double()
    cos1 = F.normalize(x, dim=1) @ F.normalize(base.weight, dim=1).t()
    assert torch.allclose(base(x, y), F.cross_entropy(cos1, y), atol=1e-14)
    # multiplicative margins: the identity margin is m = 1 (cos(1 * theta)); m = 0 is meaningless
    ls = L.LSoftmaxLoss(8, 5, m=1).double()
    assert torch.allclose(ls.margin_logits(x, y), x @ ls.weight.t(), atol=1e-12)
    assert torch.allclose(ls(x, y), F.cross_entropy(x @ ls.weight.t(), y), atol=1e-12)
    sp = L.SphereFaceLoss(8, 5, m=1).double()
    w = F.normalize(sp.weight, dim=1)
    assert torch.allclose(sp(x, y), F.cross_entropy(x @ w.t(), y), atol=1e-12)
    with pytest.raises(ValueError):
        L.LSoftmaxLoss(8, 5, m=0)


def test_lsoftmax_beta_anneals_towards_softmax():
    x, y = _rng_batch(5)
    ls = L.LSoftmaxLoss(8, 5, m=3, beta=1e9).double()
    assert torch.allclose(ls(x, y), F.cross_entropy(x @ ls.weight.t(), y), atol=1e-6)


def test_psi_is_monotonic_and_continuous():
    theta = torch.linspace(0, math.pi, 20001, dtype=torch.float64)
    for m in (1, 2, 3, 4):
        p = L.psi(torch.cos(theta), m)
        assert bool((p[1:] - p[:-1] <= 1e-12).all()), m
        assert float((p[1:] - p[:-1]).abs().max()) < 1e-2  # no jumps at k boundaries
        head = theta <= math.pi / m
        assert torch.allclose(p[head], torch.cos(m * theta[head]), atol=1e-9)
        assert float(p[-1]) == pytest.approx(-(2 * m - 1), abs=1e-9)


def test_arcface_target_is_monotonic_in_theta():
    theta = torch.linspace(0, math.pi, 5001, dtype=torch.float64)
    # 2-d features at angle theta to W = (1, 0)
    head = L.ArcFaceLoss(2, 1, s=1.0, m=0.5).double()
    head.weight.data.copy_(torch.tensor([[1.0, 0.0]], dtype=torch.float64))
    x = torch.stack([torch.cos(theta), torch.sin(theta)], 1)
    z = head.margin_logits(x, torch.zeros(len(x), dtype=torch.long))[:, 0]
    assert bool((z[1:] - z[:-1] <= 1e-12).all())


# -------------------------------------------------------------------------------- triplets


def _naive_dist(a: np.ndarray, b: np.ndarray) -> float:
    return math.sqrt(sum((float(p) - float(q)) ** 2 for p, q in zip(a, b, strict=True)))


def test_seed_triplet_loss_matches_naive_loop():
    g = torch.Generator().manual_seed(0)
    a, p, n = (F.normalize(torch.randn(64, 16, generator=g, dtype=torch.float64), dim=1) for _ in range(3))
    got = float(L.TripletLoss(0.2)(a, p, n))
    kept, total = 0, 0.0
    for ai, pi, ni in zip(a.numpy(), p.numpy(), n.numpy(), strict=True):
        pos, neg = _naive_dist(ai, pi), _naive_dist(ai, ni)
        if neg - pos < 0.2:
            kept += 1
            total += pos - neg + 0.2
    assert 0 < kept < 64
    assert got == pytest.approx(total / max(1, kept), rel=1e-12)
    # all easy -> zero loss, not NaN
    assert float(L.TripletLoss(0.2)(a, a, -a)) == 0.0


def _naive_batch_all(e: np.ndarray, y: list[int], margin: float) -> tuple[set, float]:
    kept, total = set(), 0.0
    for a in range(len(y)):
        for p in range(len(y)):
            if p == a or y[p] != y[a]:
                continue
            for n in range(len(y)):
                if y[n] == y[a]:
                    continue
                dap, dan = _naive_dist(e[a], e[p]), _naive_dist(e[a], e[n])
                if dan - dap < margin:
                    kept.add((a, p, n))
                    total += dap - dan + margin
    return kept, total / max(1, len(kept))


def _naive_batch_hard(e: np.ndarray, y: list[int], margin: float) -> tuple[set, float]:
    trips, total = set(), 0.0
    for a in range(len(y)):
        pos = [(_naive_dist(e[a], e[p]), p) for p in range(len(y)) if p != a and y[p] == y[a]]
        neg = [(_naive_dist(e[a], e[n]), n) for n in range(len(y)) if y[n] != y[a]]
        if not pos or not neg:
            continue
        (dp, p), (dn, n) = max(pos), min(neg)
        trips.add((a, p, n))
        total += max(dp - dn + margin, 0.0)
    return trips, total / max(1, len(trips))


def _pk_batch(seed: int, p: int = 4, k: int = 3, d: int = 6):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(p, d, generator=g, dtype=torch.float64)
    y = torch.arange(p).repeat_interleave(k)
    e = F.normalize(centres[y] + 0.9 * torch.randn(p * k, d, generator=g, dtype=torch.float64), dim=1)
    return e, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_all_and_batch_hard_match_naive_loops(seed):
    e, y = _pk_batch(seed)
    yl = [int(v) for v in y]
    trips, want = _naive_batch_all(e.numpy(), yl, 0.2)
    dist = L.pairwise_distances(e)
    got_trips = {tuple(int(v) for v in t) for t in L.batch_all_triplets(dist, y, 0.2)}
    assert got_trips == trips and len(trips) > 0
    assert float(L.BatchAllTripletLoss(0.2)(e, y)) == pytest.approx(want, rel=1e-9)

    trips, want = _naive_batch_hard(e.numpy(), yl, 0.2)
    got_trips = {tuple(int(v) for v in t) for t in L.batch_hard_triplets(dist, y)}
    assert got_trips == trips and len(trips) == len(yl)
    assert float(L.BatchHardTripletLoss(0.2)(e, y)) == pytest.approx(want, rel=1e-9)


def test_miners_on_hand_built_example():
    # points on a line (second coordinate 0), margin 0.2
    def pts(xs):
        return torch.tensor([[v, 0.0] for v in xs], dtype=torch.float64)

    # batch-all: d01=.1 d02=.25 d03=1 d12=.15 d13=.9 d23=.75
    e, y = pts([0.0, 0.1, 0.25, 1.0]), torch.tensor([0, 0, 1, 1])
    got = {tuple(int(v) for v in t) for t in L.batch_all_triplets(L.pairwise_distances(e), y, 0.2)}
    # kept: d(a,n) - d(a,p) < .2 -> (0,1,2) .15 semi-hard, (1,0,2) .05, (2,3,0) -.5 hard,
    # (2,3,1) -.6 hard, (3,2,1) .15; dropped: (0,1,3) .9, (1,0,3) .8, (3,2,0) .25
    assert got == {(0, 1, 2), (1, 0, 2), (2, 3, 0), (2, 3, 1), (3, 2, 1)}
    # losses .05 + .15 + .7 + .8 + .05 = 1.75 over 5 kept
    loss = L.BatchAllTripletLoss(0.2)
    assert float(loss(e, y)) == pytest.approx(0.35, abs=1e-12)
    assert loss.last_active_fraction == pytest.approx(5 / 8)

    # batch-hard with K = 3: the FARTHEST positive and the CLOSEST negative
    e, y = pts([0.0, 0.1, 0.5, 0.32, 2.0]), torch.tensor([0, 0, 0, 1, 1])
    got = {tuple(int(v) for v in t) for t in L.batch_hard_triplets(L.pairwise_distances(e), y)}
    assert got == {(0, 2, 3), (1, 2, 3), (2, 0, 3), (3, 4, 2), (4, 3, 2)}
    # per anchor: max(.5-.32+.2,0)=.38, .4-.22+.2=.38, .5-.18+.2=.52, 1.68-.18+.2=1.7, 1.68-1.5+.2=.38
    assert float(L.BatchHardTripletLoss(0.2)(e, y)) == pytest.approx((0.38 + 0.38 + 0.52 + 1.7 + 0.38) / 5)


def test_pairwise_distances_match_naive():
    e, _ = _pk_batch(7)
    d = L.pairwise_distances(e)
    en = e.numpy()
    for i in range(len(en)):
        for j in range(len(en)):
            assert float(d[i, j]) == pytest.approx(_naive_dist(en[i], en[j]), abs=1e-7)


def test_facenet_loss_is_triplet_on_normalised_plus_ce_on_logits():
    e, y = _pk_batch(3)
    feats = e * torch.linspace(0.5, 3.0, len(e), dtype=torch.float64)[:, None]  # not unit norm
    logits = torch.randn(len(e), 4, dtype=torch.float64)
    loss = L.FaceNetLoss(alpha=0.2, miner="all", ce_weight=0.5)
    got = loss(feats, logits, y)
    want = L.BatchAllTripletLoss(0.2)(e, y) + 0.5 * F.cross_entropy(logits, y)
    assert torch.allclose(got, want, atol=1e-12)
    assert set(loss.components) == {"triplet", "ce"}
    hard = L.FaceNetLoss(miner="hard")(feats, logits, y)
    assert torch.allclose(hard, L.BatchHardTripletLoss(0.2)(e, y) + F.cross_entropy(logits, y), atol=1e-12)


def _naive_circle(e: np.ndarray, y: list[int], gamma: float, m: float) -> float:
    total, count = 0.0, 0
    for a in range(len(y)):
        sp = [_cos(e[a], e[i]) for i in range(len(y)) if i != a and y[i] == y[a]]
        sn = [_cos(e[a], e[j]) for j in range(len(y)) if y[j] != y[a]]
        if not sp or not sn:
            continue
        neg = sum(math.exp(gamma * max(s + m, 0.0) * (s - m)) for s in sn)
        pos = sum(math.exp(-gamma * max(1 + m - s, 0.0) * (s - (1 - m))) for s in sp)
        total += math.log(1.0 + neg * pos)
        count += 1
    return total / max(1, count)


@pytest.mark.parametrize("gamma,m", [(80.0, 0.25), (8.0, 0.4)])
def test_circle_loss_matches_naive_loop(gamma, m):
    e, y = _pk_batch(11, p=3, k=3)
    got = float(L.CircleLoss(gamma=gamma, m=m)(e, y))
    assert got == pytest.approx(_naive_circle(e.numpy(), [int(v) for v in y], gamma, m), rel=1e-9)


def test_circle_loss_weights_are_detached():
    e, y = _pk_batch(12, p=2, k=2)
    e.requires_grad_(True)
    L.CircleLoss(gamma=4.0, m=0.25)(e, y).backward()
    g_auto = e.grad.clone()
    # the gradient with alphas treated as constants, by finite differences of a frozen-alpha loss
    en = F.normalize(e.detach(), dim=1)
    sim0 = en @ en.t()
    ap, an = (1.25 - sim0).clamp_min(0), (sim0 + 0.25).clamp_min(0)

    def frozen(x):
        xn = F.normalize(x, dim=1)
        s = xn @ xn.t()
        pos_mask, neg_mask = L._label_masks(y)
        lp = (-4.0 * ap * (s - 0.75)).masked_fill(~pos_mask, -math.inf).logsumexp(1)
        ln = (4.0 * an * (s - 0.25)).masked_fill(~neg_mask, -math.inf).logsumexp(1)
        return F.softplus(lp + ln).mean()

    g_num = torch.autograd.functional.jacobian(frozen, e.detach())
    assert torch.allclose(g_auto, g_num, atol=1e-10)


# -------------------------------------------------------------------------------- gradients


def _all_losses(d: int, c: int):
    for kind, hp in CLASSIFIER_CASES:
        yield kind, L.CLASSIFIER_LOSSES[kind](d, c, **hp), "cls"
    yield "softmax", L.SoftmaxLoss(d, c), "cls"
    yield "arcface-easy", L.ArcFaceLoss(d, c, easy_margin=True), "cls"
    for name, cls in L.METRIC_LOSSES.items():
        yield name, cls(), "metric"


def test_gradients_are_finite_even_at_degenerate_points():
    torch.manual_seed(0)
    d, c = 8, 4
    for name, loss, kind in _all_losses(d, c):
        w = loss.weight.detach() if kind == "cls" else torch.randn(c, d)
        # features exactly on (cos = 1) and opposite (cos = -1) a class weight, duplicates, zeros
        x = torch.cat([w[:2] * 2.0, -w[2:3], w[:2] * 2.0, torch.randn(3, d)]).float()
        y = torch.tensor([0, 1, 1, 0, 1, 2, 3, 2])
        x.requires_grad_(True)
        out = loss(x, y)
        out.backward()
        assert torch.isfinite(out), name
        assert torch.isfinite(x.grad).all(), name
        if kind == "cls":
            assert torch.isfinite(loss.weight.grad).all(), name
    # seed triplet with identical anchor/positive (distance 0)
    a = torch.randn(4, 8, requires_grad=True)
    L.TripletLoss()(a, a * 1.0, a + 0.01).backward()
    assert torch.isfinite(a.grad).all()
    # FaceNetLoss
    f = torch.randn(8, 8, requires_grad=True)
    L.FaceNetLoss()(f, torch.randn(8, 3), torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])).backward()
    assert torch.isfinite(f.grad).all()
