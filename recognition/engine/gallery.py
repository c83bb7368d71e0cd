"""Matching maths on unit embeddings (no database): the seed's
``compare_faces`` and the open-set view the product needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

UNKNOWN = "Unknown"


def distances(gallery: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """Euclidean distances from ``probe`` (D,) to each row of ``gallery`` (N, D)."""
    gallery = np.asarray(gallery, np.float32).reshape(-1, np.asarray(probe).shape[-1])
    return np.linalg.norm(gallery - np.asarray(probe, np.float32)[None, :], axis=1)


def compare_faces(gallery: np.ndarray, probe: np.ndarray, threshold: float) -> tuple[list[bool], np.ndarray]:
    """The seed's compare_faces: per gallery row, match (distance <= threshold)
    and the distances themselves."""
    d = distances(gallery, probe)
    return [bool(x <= threshold) for x in d], d


def nearest_name(gallery: np.ndarray, names: Sequence[str], probe: np.ndarray, threshold: float) -> str:
    """The seed's recognition: the closest row's name if it matches, else Unknown."""
    if len(names) == 0:
        return UNKNOWN
    matches, d = compare_faces(gallery, probe, threshold)
    best = int(np.argmin(d))
    return names[best] if matches[best] else UNKNOWN


@dataclass
class Identification:
    """Open-set answer: the nearest person, how near, and how near the next
    *other* person is (a small gap means an ambiguous match)."""

    name: str  # the nearest person's name, or Unknown when over the threshold
    nearest: str | None  # the nearest person whatever the threshold
    distance: float  # to the nearest person (min over their embeddings)
    runner_up: str | None
    runner_up_distance: float | None
    threshold: float

    @property
    def matched(self) -> bool:
        return self.name != UNKNOWN


def identify(gallery: np.ndarray, names: Sequence[str], probe: np.ndarray, threshold: float) -> Identification:
    """A person's distance is the minimum over their gallery embeddings."""
    if len(names) == 0:
        return Identification(UNKNOWN, None, float("inf"), None, None, threshold)
    d = distances(gallery, probe)
    per_person: dict[str, float] = {}
    for name, dist in zip(names, d, strict=True):
        if dist < per_person.get(name, float("inf")):
            per_person[name] = float(dist)
    ranked = sorted(per_person.items(), key=lambda kv: kv[1])
    nearest, dist = ranked[0]
    runner, runner_d = ranked[1] if len(ranked) > 1 else (None, None)
    return Identification(
        name=nearest if dist <= threshold else UNKNOWN,
        nearest=nearest,
        distance=dist,
        runner_up=runner,
        runner_up_distance=runner_d,
        threshold=threshold,
    )
