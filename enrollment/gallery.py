"""The enrolled people as a search gallery: every FaceEmbedding, grouped by person."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from recognition import search

from .models import FaceEmbedding

PEOPLE = search.Gallery(FaceEmbedding, "person_id")


def identify(
    embeddings: Iterable[Sequence[float] | np.ndarray | None], model_name: str, model_version: str,
    exact: bool = False,
) -> list[search.Match]:
    """Nearest person and runner-up for each embedding (``match.nearest.identity_id`` is a person id)."""
    return search.identify(PEOPLE, embeddings, model_name, model_version, exact)


def nearest_people(
    embedding: Sequence[float] | np.ndarray, model_name: str, model_version: str, k: int = 2, exact: bool = False,
    ef_search: int | None = None,
) -> list[search.Neighbour]:
    """``ef_search``: None = chosen from the gallery's size (recognition.search.ef_search_for)."""
    return search.nearest(PEOPLE, embedding, model_name, model_version, k, exact, ef_search)
