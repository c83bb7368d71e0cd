"""Threshold tuning for a site: what the site's own enrolled photos say about a threshold, and what a
candidate threshold would have changed in the recent access log.

The false-accept rate is the *identification* one: each enrolled person in turn plays a stranger and is
compared with the whole rest of the gallery (the nearest other person), so it grows with the number of
people enrolled, as it does at the door. The pairwise rate (one photo against one other) would look far
better and mean little.
"""

from __future__ import annotations

import dataclasses
import io
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from enrollment.models import FaceEmbedding
from recognition.pipelines import current_embedder_name

from .. import decisions
from ..decision_inputs import camera_rules, person_facts, recorded_credential, recorded_faces, recorded_site_rules
from ..models import AccessEvent, Site

MAX_EMBEDDINGS = 3000  # pairwise distances of this many fit in memory easily (36 MB of float32)


@dataclass
class SiteDistances:
    people: int
    embeddings: int
    genuine: np.ndarray  # every pair of two photos of the same person
    impostor: np.ndarray  # every pair of photos of two different people
    nearest_other: np.ndarray  # per person: distance to the nearest *other* person (a stranger's best match)
    nearest_own: np.ndarray  # per photo of a person with 2+ photos: distance to their nearest other photo
    model: str = ""
    sampled: bool = False

    def false_accept(self, threshold: float) -> float | None:
        """Identification FAR: share of people who, as strangers, would be let in as somebody else."""
        return float(np.mean(self.nearest_other <= threshold)) if self.nearest_other.size else None

    def genuine_accept(self, threshold: float) -> float | None:
        return float(np.mean(self.nearest_own <= threshold)) if self.nearest_own.size else None

    def suggest(self, far_target: float) -> float | None:
        """The largest threshold whose identification FAR stays at or under ``far_target``."""
        d = np.sort(self.nearest_other)
        if d.size == 0:
            return None
        allowed = int(np.floor(far_target * d.size))  # how many strangers may get in
        if allowed >= d.size:
            return float(d[-1])
        return float(d[allowed]) - 1e-4  # just under the first stranger too many


@dataclass
class WhatIf:
    examined: int
    changed: list[dict] = field(default_factory=list)


def site_distances(site: Site, rng_seed: int = 0) -> SiteDistances:
    """Distances among the current model's embeddings of the people who may enter ``site``."""
    model = current_embedder_name()
    rows = list(FaceEmbedding.objects.filter(person__grants__site=site, model_name=model)
                .values_list("person_id", "embedding"))
    sampled = len(rows) > MAX_EMBEDDINGS
    if sampled:
        pick = np.random.default_rng(rng_seed).choice(len(rows), MAX_EMBEDDINGS, replace=False)
        rows = [rows[i] for i in sorted(pick)]
    empty = np.zeros(0, np.float32)
    if len(rows) < 2:
        return SiteDistances(len({p for p, _ in rows}), len(rows), empty, empty, empty, empty, model, sampled)
    owners = np.array([p for p, _ in rows])
    vecs = np.asarray([np.asarray(v, np.float32) for _, v in rows])
    sq = np.sum(vecs**2, axis=1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * vecs @ vecs.T, 0.0))
    same = owners[:, None] == owners[None, :]
    upper = np.triu(np.ones_like(same, dtype=bool), k=1)
    genuine, impostor = dist[same & upper], dist[~same & upper]
    nearest_other = []
    by_person = defaultdict(list)
    for i, p in enumerate(owners):
        by_person[p].append(i)
    for idx in by_person.values():
        others = dist[np.ix_(idx, np.flatnonzero(~np.isin(np.arange(len(owners)), idx)))]
        if others.size:
            nearest_other.append(float(others.min()))
    own = np.where(same & ~np.eye(len(owners), dtype=bool), dist, np.inf).min(axis=1)
    return SiteDistances(len(by_person), len(rows), genuine, impostor, np.array(nearest_other),
                         own[np.isfinite(own)], model, sampled)


def plot_svg(d: SiteDistances, threshold: float, candidate: float | None = None) -> str:
    """Histograms of genuine and impostor distances with the threshold line(s), as an SVG document."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.6), dpi=100)
    ax = fig.add_subplot()
    bins = np.linspace(0.0, 2.0, 81)
    if d.impostor.size:
        ax.hist(d.impostor, bins=bins, density=True, alpha=0.45, color="#c8302b",
                label="photos of two different people")
    if d.nearest_other.size:
        ax.hist(d.nearest_other, bins=bins, density=True, histtype="step", linewidth=2, color="#7a1f1b",
                label="a stranger's nearest match (identification)")
    if d.genuine.size:
        ax.hist(d.genuine, bins=bins, density=True, alpha=0.5, color="#0f8a4b",
                label="two photos of the same person")
    ax.axvline(threshold, color="#141a2a", linewidth=2, label=f"current threshold {threshold:.3f}")
    if candidate is not None and abs(candidate - threshold) > 1e-9:
        ax.axvline(candidate, color="#2f5bea", linewidth=2, linestyle="--", label=f"candidate {candidate:.3f}")
    ax.set_xlabel("Euclidean distance between embeddings (smaller = more alike)")
    ax.set_ylabel("density")
    ax.set_xlim(0, 2)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()


def what_if(site: Site, candidate: float, last: int = 100) -> WhatIf:
    """Replay the site's last ``last`` events decided by the current model at ``candidate`` from their stored
    decision inputs (no engine) and list the decisions that would change. Events another model decided are left
    out: their distances are on another scale than the threshold being tuned (after a model switch)."""
    events = list(AccessEvent.objects.filter(site=site, status=AccessEvent.Status.DONE,
                                             model_name=current_embedder_name())
                  .select_related("camera", "person").order_by("-received_at", "-id")[:last])
    inputs = {e.pk: recorded_faces(e) for e in events}
    credentials = {e.pk: recorded_credential(e) for e in events}  # the stored outcomes of PINs and cards
    people = person_facts({f.nearest_person_id for faces in inputs.values() for f in faces
                           if f.nearest_person_id is not None}
                          | {c.card_person_id for c in credentials.values() if c.card_person_id is not None},
                          names=True)
    names = {pk: p.name for pk, p in people.items()}
    out = WhatIf(len(events))
    for e in events:
        rules = recorded_site_rules(e, site, candidate)
        camera = dataclasses.replace(camera_rules(e.camera), verification=rules.verification)  # as decided then
        replay = decisions.decide(inputs[e.pk], rules, camera, people, e.received_at, credentials[e.pk])
        if replay.decision != e.decision or replay.person_id != e.person_id:
            out.changed.append({"event": e, "was": e.decision, "now": replay.decision,
                                "person": names.get(replay.person_id, ""), "reason": replay.reason})
    return out


@dataclass
class LiveScores:
    """The live scores of a site's recent decided events: the faces let in, and those taken for attacks
    (refused under enforce, or under the threshold in monitor)."""

    granted: np.ndarray
    suspected: np.ndarray
    threshold: float
    policy: str

    @property
    def count(self) -> int:
        return int(self.granted.size + self.suspected.size)


def live_scores(site: Site, last: int = 2000) -> LiveScores:
    """The deciding faces' live scores of the site's last ``last`` scored events."""
    rows = list(AccessEvent.objects.filter(site=site, status=AccessEvent.Status.DONE, liveness__isnull=False)
                .order_by("-received_at").values_list("liveness", "liveness_threshold", "reason_code")[:last])
    attack = [code == decisions.PRESENTATION_ATTACK or decisions.suspected(s, t) for s, t, code in rows]
    suspected = [s for (s, _, _), bad in zip(rows, attack, strict=True) if bad]
    granted = [s for (s, _, _), bad in zip(rows, attack, strict=True) if not bad]
    return LiveScores(np.asarray(granted, np.float64), np.asarray(suspected, np.float64), site.liveness_threshold,
                      site.liveness_policy)


def live_plot_svg(scores: LiveScores) -> str:
    """Histogram of live scores (log-odds axis: the scores crowd near 0 and 1) with the site's threshold line."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    def logit(p: np.ndarray | float) -> np.ndarray:
        p = np.clip(np.asarray(p, np.float64), 1e-12, 1 - 1e-12)
        return np.log10(p / (1 - p))

    fig = Figure(figsize=(8, 3.2), dpi=100)
    ax = fig.add_subplot()
    bins = np.linspace(-12, 12, 73)
    if scores.granted.size:
        ax.hist(logit(scores.granted), bins=bins, alpha=0.6, color="#0f8a4b", label=f"let in ({scores.granted.size})")
    if scores.suspected.size:
        ax.hist(logit(scores.suspected), bins=bins, alpha=0.6, color="#c8302b",
                label=f"taken for a print or a screen ({scores.suspected.size})")
    ax.axvline(float(logit(scores.threshold)), color="#141a2a", linewidth=2,
               label=f"liveness threshold {scores.threshold:.3f}")
    ticks = [1e-9, 1e-6, 1e-3, 0.5, 1 - 1e-3, 1 - 1e-6, 1 - 1e-9]
    ax.set_xticks([float(logit(t)) for t in ticks], ["1e-9", "1e-6", "0.001", "0.5", "0.999", "1-1e-6", "1-1e-9"])
    ax.set_xlabel("live score of the face (left: a print or a screen, right: a live person)")
    ax.set_ylabel("events")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()
