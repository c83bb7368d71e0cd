"""Known impostor examples: faces reviewers marked "not <person>", searched like a gallery per person."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recognition import search

from ..models import ImpostorExample

IMPOSTORS = search.Gallery(ImpostorExample, "person_id")


def impostor_distance(person_id: int, embedding: Sequence[float] | np.ndarray, model_name: str,
                      model_version: str) -> float | None:
    """How near ``embedding`` is to the faces marked "not this person" (None: no such face)."""
    return search.distance_to(IMPOSTORS, person_id, embedding, model_name, model_version)
