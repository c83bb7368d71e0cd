"""Nearest-person search in PostgreSQL with pgvector: the only module that writes vector SQL.

A person's distance is the minimum L2 distance (``<->``) over their embeddings of
one model (name + version); embeddings of other models are never compared.
The fast path asks the HNSW index for the nearest embeddings and groups them by
person in Python; when the nearest rows all belong to fewer than ``k`` people it
widens the window, and finally falls back to the exact grouped query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connections, transaction
from pgvector import Vector

from enrollment.models import FaceEmbedding

FIRST_WINDOW = 16  # nearest embeddings fetched first; most people have a handful of photos
MAX_WINDOW = 1024


@dataclass(frozen=True)
class PersonDistance:
    person_id: int
    distance: float


@dataclass(frozen=True)
class Match:
    nearest: PersonDistance | None
    runner_up: PersonDistance | None  # the second-nearest other person


def _table() -> str:
    return FaceEmbedding._meta.db_table


def _vector_text(embedding: Sequence[float] | np.ndarray) -> str:
    vec = np.asarray(embedding, dtype=np.float32).reshape(-1)
    if vec.shape[0] != FaceEmbedding._meta.get_field("embedding").dimensions:
        raise ValueError(f"expected a 128-d embedding, got {vec.shape[0]}")
    return Vector(vec).to_text()


def _group(rows: Iterable[tuple[int, float]]) -> list[PersonDistance]:
    best: dict[int, float] = {}
    for person_id, distance in rows:
        if person_id not in best or distance < best[person_id]:
            best[person_id] = distance
    return [PersonDistance(p, float(d)) for p, d in sorted(best.items(), key=lambda kv: kv[1])]


def nearest_sql() -> str:
    """Nearest embeddings of one model, in index order (params: vector, model name, version, vector, limit)."""
    return (
        f"SELECT person_id, embedding <-> %s::vector AS d FROM {_table()} "
        "WHERE model_name = %s AND model_version = %s ORDER BY embedding <-> %s::vector LIMIT %s"
    )


def _exact(cursor, vec: str, model_name: str, model_version: str, k: int) -> list[PersonDistance]:
    cursor.execute("SET LOCAL enable_indexscan = off")  # a sequential scan: exact, no HNSW approximation
    cursor.execute(
        f"SELECT person_id, MIN(embedding <-> %s::vector) AS d FROM {_table()} "
        "WHERE model_name = %s AND model_version = %s GROUP BY person_id ORDER BY d LIMIT %s",
        [vec, model_name, model_version, k],
    )
    return [PersonDistance(p, float(d)) for p, d in cursor.fetchall()]


def nearest_people(
    embedding: Sequence[float] | np.ndarray,
    model_name: str,
    model_version: str,
    k: int = 2,
    exact: bool = False,
    ef_search: int = 64,
    using: str = "default",
) -> list[PersonDistance]:
    """The ``k`` nearest people to ``embedding`` among the embeddings of one model, nearest first."""
    vec = _vector_text(embedding)
    with transaction.atomic(using=using, savepoint=False), connections[using].cursor() as cursor:
        if exact:
            return _exact(cursor, vec, model_name, model_version, k)
        # strict_order: keep scanning the graph until enough rows pass the model filter, in order.
        cursor.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        window = max(FIRST_WINDOW, 4 * k)
        while True:
            # pgvector caps ef_search at 1000.
            cursor.execute(f"SET LOCAL hnsw.ef_search = {min(1000, max(ef_search, window))}")
            cursor.execute(nearest_sql(), [vec, model_name, model_version, vec, window])
            rows = cursor.fetchall()
            people = _group(rows)
            if len(people) >= k or len(rows) < window:  # enough people, or every embedding seen
                return people[:k]
            if window >= MAX_WINDOW:
                return _exact(cursor, vec, model_name, model_version, k)
            window *= 4


def identify(
    embeddings: Iterable[Sequence[float] | np.ndarray | None],
    model_name: str,
    model_version: str,
    exact: bool = False,
) -> list[Match]:
    """Nearest person and runner-up for each embedding (None in, empty match out)."""
    out = []
    for embedding in embeddings:
        people = [] if embedding is None else nearest_people(embedding, model_name, model_version, 2, exact)
        out.append(Match(people[0] if people else None, people[1] if len(people) > 1 else None))
    return out
