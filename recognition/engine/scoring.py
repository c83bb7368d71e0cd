"""Open-set identification scoring on unit embeddings: plain NumPy, no Django,
no torch. What the door decides once it has an embedding.

- :func:`flip_average`: test-time augmentation, the embedding of a face and of
  its mirror image summed and re-normalised (the same maths as
  ``Pipeline.faces(..., flip_tta=True)``).
- :func:`template`: the rows that stand for one person in the gallery. A
  person's distance is always the minimum over their rows, so every mode can be
  stored as plain rows of a vector index: ``"photos"`` (one row per enrolment
  photo: today's rule), ``"mean"`` (one row, the re-normalised mean),
  ``"photos+mean"`` (both: the min of {each photo, the mean}).
- :func:`nearest_two`: per probe, the nearest person and the runner-up (the
  nearest *other* person) with their distances ``d1 <= d2``.
- :func:`accept` / :class:`Rule`: ``d1 <= threshold`` and, optionally,
  ``d1 <= ratio * d2`` (the runner-up ratio test) and ``d2 - d1 >= margin``.
  A missing runner-up (one enrolled person) passes the ratio and margin tests.
- :func:`threshold_at_far` and :func:`choose_rule`: how the parameters are
  chosen from a *threshold set* (strangers, and for the two-parameter rules
  genuine probes too), never from the set the figures are reported on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TEMPLATE_MODES = ("photos", "mean", "photos+mean")


def normalise(v: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero)."""
    v = np.asarray(v, np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1)


def flip_average(plain: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """Flip TTA: the re-normalised sum (equivalently mean) of the embeddings of
    the face and of its mirror image."""
    return normalise(np.asarray(plain, np.float32) + np.asarray(mirrored, np.float32))


def template(embeddings: np.ndarray, mode: str = "photos") -> np.ndarray:
    """The gallery rows for one person from their enrolment embeddings (M, D).

    ``photos``: the embeddings themselves; ``mean``: one row, the re-normalised
    mean; ``photos+mean``: the embeddings and the mean row. With one photo every
    mode gives that photo once."""
    e = normalise(np.atleast_2d(np.asarray(embeddings, np.float32)))
    if len(e) == 0:
        raise ValueError("a template needs at least one embedding")
    if mode not in TEMPLATE_MODES:
        raise ValueError(f"unknown template mode {mode!r}; one of {', '.join(TEMPLATE_MODES)}")
    if mode == "photos" or len(e) == 1:
        return e
    mean = normalise(e.mean(0, keepdims=True))
    return mean if mode == "mean" else np.concatenate([e, mean])


def build_gallery(embeddings: np.ndarray, person: Sequence, mode: str = "photos") -> tuple[np.ndarray, np.ndarray]:
    """Apply :func:`template` to every person. ``person[i]`` labels row i of
    ``embeddings``. Returns (rows (R, D), row_person (R,)) with each person's
    rows contiguous, in order of first appearance."""
    person = np.asarray(person)
    if len(person) != len(embeddings):
        raise ValueError("one person label per embedding")
    _, first = np.unique(person, return_index=True)
    rows, labels = [], []
    for i in np.sort(first):
        p = person[i]
        t = template(np.asarray(embeddings)[person == p], mode)
        rows.append(t)
        labels.append(np.repeat(person[i : i + 1], len(t)))
    return np.concatenate(rows), np.concatenate(labels)


@dataclass
class Ranked:
    """Per probe: the nearest person and the runner-up, by Euclidean distance
    of unit vectors, a person's distance being the min over their rows."""

    person1: np.ndarray  # (P,) label of the nearest person
    d1: np.ndarray  # (P,)
    person2: np.ndarray  # (P,) label of the runner-up (meaningless where d2 is inf)
    d2: np.ndarray  # (P,) inf when the gallery holds a single person


def nearest_two(rows: np.ndarray, row_person: Sequence, probes: np.ndarray, chunk: int = 512) -> Ranked:
    rows = normalise(rows)
    probes = normalise(np.atleast_2d(probes))
    row_person = np.asarray(row_person)
    order = np.argsort(row_person, kind="stable")
    rows, labels = rows[order], row_person[order]
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    people = labels[starts]
    p1, d1, p2, d2 = [], [], [], []
    for s in range(0, len(probes), chunk):
        sim = probes[s : s + chunk] @ rows.T
        best = np.maximum.reduceat(sim, starts, axis=1)  # (p, people): max similarity = min distance
        dist = np.sqrt(np.clip(2 - 2 * best, 0, None))
        if dist.shape[1] == 1:
            j1 = np.zeros(len(dist), int)
            p1.append(people[j1])
            d1.append(dist[:, 0])
            p2.append(people[j1])
            d2.append(np.full(len(dist), np.inf, np.float32))
            continue
        two = np.argpartition(dist, 1, axis=1)[:, :2]
        dd = np.take_along_axis(dist, two, 1)
        swap = dd[:, 1] < dd[:, 0]
        two[swap] = two[swap][:, ::-1]
        dd[swap] = dd[swap][:, ::-1]
        p1.append(people[two[:, 0]])
        d1.append(dd[:, 0])
        p2.append(people[two[:, 1]])
        d2.append(dd[:, 1])
    return Ranked(np.concatenate(p1), np.concatenate(d1), np.concatenate(p2), np.concatenate(d2))


def accept(d1, d2, threshold: float, ratio: float | None = None, margin: float | None = None):
    """The door's rule: the nearest person at ``d1`` is accepted when
    ``d1 <= threshold`` and, when given, ``d1 <= ratio * d2`` (runner-up ratio)
    and ``d2 - d1 >= margin``. ``d2`` None, NaN or inf (nobody else enrolled)
    passes both tests. Scalars in, bool out; arrays in, bool array out."""
    scalar = np.ndim(d1) == 0
    d1 = np.asarray(d1, np.float64)
    d2 = np.asarray(np.inf if d2 is None else d2, np.float64)
    d2 = np.where(np.isnan(d2), np.inf, d2)
    ok = d1 <= threshold
    if ratio is not None:
        ok &= (d1 <= ratio * d2) | np.isinf(d2)
    if margin is not None:
        ok &= (d2 - d1) >= margin
    return bool(ok) if scalar else ok


@dataclass(frozen=True)
class Rule:
    threshold: float
    ratio: float | None = None
    margin: float | None = None

    def accept(self, d1, d2):
        return accept(d1, d2, self.threshold, self.ratio, self.margin)

    def describe(self) -> str:
        parts = [f"d1 <= {self.threshold:.3f}"]
        if self.ratio is not None:
            parts.append(f"d1/d2 <= {self.ratio:.2f}")
        if self.margin is not None:
            parts.append(f"d2 - d1 >= {self.margin:.3f}")
        return " and ".join(parts)


def threshold_at_far(stranger_d1: np.ndarray, stranger_d2: np.ndarray | None = None, far: float = 0.01,
                     ratio: float | None = None, margin: float | None = None) -> float:
    """The distance threshold at which a ``far`` share of these strangers is
    accepted as somebody, given the ratio / margin tests.

    Without the extra tests this is ``np.quantile(stranger_d1, far)``, the
    identification protocol's rule. With them, a stranger who fails the extra
    test can never be accepted (its score is +inf) and the same quantile is
    taken over the scores; the threshold is then +inf when fewer than a ``far``
    share of the strangers pass the extra test at all."""
    d1 = np.asarray(stranger_d1, np.float64)
    if ratio is None and margin is None:
        return float(np.quantile(d1, far))
    d2 = np.full_like(d1, np.inf) if stranger_d2 is None else np.asarray(stranger_d2, np.float64)
    passes = accept(d1, d2, np.inf, ratio, margin)
    score = np.sort(np.where(passes, d1, np.inf))
    pos = (len(score) - 1) * far
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    if np.isinf(score[hi]):
        return float(np.inf)
    return float(score[lo] + (score[hi] - score[lo]) * (pos - lo))


def accept_rate(rule: Rule, d1: np.ndarray, d2: np.ndarray, correct: np.ndarray | None = None) -> float:
    """Share accepted by ``rule``; with ``correct`` (genuine probes) an accept
    counts only when the nearest person is the right one."""
    ok = rule.accept(d1, d2)
    if correct is not None:
        ok = ok & np.asarray(correct, bool)
    return float(np.mean(ok)) if len(ok) else 0.0


DEFAULT_RATIOS = tuple(np.round(np.arange(0.50, 1.0001, 0.01), 2))
DEFAULT_MARGINS = tuple(np.round(np.arange(0.0, 0.3001, 0.01), 2))


def choose_rule(stranger_d1: np.ndarray, stranger_d2: np.ndarray, genuine_correct: np.ndarray,
                genuine_d1: np.ndarray, genuine_d2: np.ndarray, far: float = 0.01, kind: str = "ratio",
                grid: Sequence[float] | None = None, cap: float | None = None) -> Rule:
    """A two-parameter rule chosen on a threshold set only: for every ``ratio``
    (``kind="ratio"``) or ``margin`` (``kind="margin"``) of the grid, the
    threshold that holds the threshold-set strangers to ``far``
    (:func:`threshold_at_far`); keep the pair that accepts the most genuine
    threshold-set probes. Ties go to the loosest ratio / smallest margin (the
    rule closest to the plain threshold). ``kind="plain"`` is the one-parameter
    rule (no genuine probes used).

    ``cap``: the distance threshold never exceeds it (default 2, the largest
    distance of unit vectors). Without a cap a tight ratio makes the threshold
    2, i.e. a ratio-only rule, which accepts anybody where nobody else is
    enrolled (no runner-up)."""
    if kind == "plain":
        return Rule(threshold_at_far(stranger_d1, stranger_d2, far))
    if kind not in ("ratio", "margin"):
        raise ValueError(f"kind must be plain, ratio or margin, not {kind!r}")
    if grid is None:
        grid = DEFAULT_RATIOS if kind == "ratio" else DEFAULT_MARGINS
    # Loosest first, so that ties keep the rule nearest the plain threshold.
    grid = sorted(grid, reverse=kind == "ratio")
    best, best_rate = None, -1.0
    for value in grid:
        extra = {"ratio": float(value)} if kind == "ratio" else {"margin": float(value)}
        t = threshold_at_far(stranger_d1, stranger_d2, far, **extra)
        rule = Rule(min(t, 2.0 if cap is None else cap), **extra)  # unit vectors are never further apart than 2
        rate = accept_rate(rule, genuine_d1, genuine_d2, genuine_correct)
        if rate > best_rate + 1e-12:
            best, best_rate = rule, rate
    return best
