"""Nearest-identity search in PostgreSQL with pgvector: the only module that writes vector SQL.

A :class:`Gallery` is a table of :class:`~recognition.models.StoredEmbedding` rows grouped into
identities by one column (enrollment's people: ``person_id``). An identity's distance is the minimum
L2 distance (``<->``) over its embeddings of one model (name + version); embeddings of other models
are never compared. The fast path is one statement of ``k`` HNSW index scans ("twostep" in
bench/search_bench.py): the nearest embedding gives the nearest identity, and each further scan skips
the identities already found (``NOT IN ...``). pgvector's iterative scan (``strict_order``) keeps
walking the graph past the rows that filter removes, so an identity with many close photos cannot
hide the runner-up. When the index yields fewer than ``k`` identities (a gallery that small, or the
scan hit ``hnsw.max_scan_tuples``) the exact grouped query answers instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connections, transaction
from pgvector import Vector

from .models import EMBEDDING_DIM, StoredEmbedding

# bench/search_bench.py: recall@1 = 1.000 on genuine probes at 100 over repeated runs (64 was 0.99-1.00).
DEFAULT_EF_SEARCH = 100


@dataclass(frozen=True)
class Gallery:
    """Where the embeddings are and which column says whose they are."""

    model: type[StoredEmbedding]
    identity_column: str  # e.g. "person_id"

    @property
    def table(self) -> str:
        return self.model._meta.db_table


@dataclass(frozen=True)
class Neighbour:
    identity_id: int
    distance: float


@dataclass(frozen=True)
class Match:
    nearest: Neighbour | None
    runner_up: Neighbour | None  # the second-nearest other identity


def _vector_text(embedding: Sequence[float] | np.ndarray) -> str:
    vec = np.asarray(embedding, dtype=np.float32).reshape(-1)
    if vec.shape[0] != EMBEDDING_DIM:
        raise ValueError(f"expected a {EMBEDDING_DIM}-d embedding, got {vec.shape[0]}")
    return Vector(vec).to_text()


def nearest_sql(gallery: Gallery, k: int = 2) -> str:
    """The ``k`` nearest identities of one model, one HNSW scan each (params: q, model_name, model_version).

    Rows come out nearest identity first, one per identity, with its minimum distance.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    who = gallery.identity_column
    steps = []
    for i in range(1, k + 1):
        # Earlier identities are excluded, so this scan's first row is the next identity's nearest photo.
        found = " UNION ALL ".join(f"SELECT who FROM p{j}" for j in range(1, i))
        skip = f" AND {who} NOT IN ({found})" if found else ""
        steps.append(
            f"p{i} AS MATERIALIZED (SELECT {who} AS who, embedding <-> %(q)s::vector AS d FROM {gallery.table} "
            f"WHERE model_name = %(model_name)s AND model_version = %(model_version)s{skip} "
            "ORDER BY embedding <-> %(q)s::vector LIMIT 1)"
        )
    rows = " UNION ALL ".join(f"SELECT {i} AS step, who, d FROM p{i}" for i in range(1, k + 1))
    return f"WITH {', '.join(steps)} SELECT who, d FROM ({rows}) AS found ORDER BY step"


def search_settings_sql() -> str:
    """SET LOCAL of the HNSW search settings in one round trip (param: ef_search as text)."""
    return (
        "SELECT set_config('hnsw.ef_search', %s, true), "
        "set_config('hnsw.iterative_scan', 'strict_order', true)"
    )


def _exact(cursor, gallery: Gallery, vec: str, model_name: str, model_version: str, k: int) -> list[Neighbour]:
    who = gallery.identity_column
    cursor.execute("SET LOCAL enable_indexscan = off")  # a sequential scan: exact, no HNSW approximation
    cursor.execute(
        f"SELECT {who}, MIN(embedding <-> %s::vector) AS d FROM {gallery.table} "
        f"WHERE model_name = %s AND model_version = %s GROUP BY {who} ORDER BY d, {who} LIMIT %s",
        [vec, model_name, model_version, k],
    )
    return [Neighbour(p, float(d)) for p, d in cursor.fetchall()]


def nearest(
    gallery: Gallery,
    embedding: Sequence[float] | np.ndarray,
    model_name: str,
    model_version: str,
    k: int = 2,
    exact: bool = False,
    ef_search: int = DEFAULT_EF_SEARCH,
    using: str = "default",
) -> list[Neighbour]:
    """The ``k`` nearest identities to ``embedding`` among the embeddings of one model, nearest first."""
    vec = _vector_text(embedding)
    # The search settings are SET LOCAL in a block that is rolled back at the end (it only reads): a
    # transaction of its own, or a savepoint inside the caller's, so they never leak to later queries.
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        found = _search(cursor, gallery, vec, model_name, model_version, k, exact, ef_search)
        transaction.set_rollback(True, using=using)
    return found


def _search(
    cursor, gallery: Gallery, vec: str, model_name: str, model_version: str, k: int, exact: bool, ef_search: int
) -> list[Neighbour]:
    if exact:
        return _exact(cursor, gallery, vec, model_name, model_version, k)
    cursor.execute(search_settings_sql(), [str(min(1000, max(1, int(ef_search))))])  # pgvector: 1..1000
    params = {"q": vec, "model_name": model_name, "model_version": model_version}
    cursor.execute(nearest_sql(gallery, k), params)
    found = [Neighbour(p, float(d)) for p, d in cursor.fetchall()]
    if len(found) < k:
        return _exact(cursor, gallery, vec, model_name, model_version, k)
    return found


def distance_to(
    gallery: Gallery, identity_id: int, embedding: Sequence[float] | np.ndarray, model_name: str, model_version: str,
    using: str = "default",
) -> float | None:
    """The minimum distance from ``embedding`` to one identity's embeddings of one model (exact), or None."""
    vec = _vector_text(embedding)
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT MIN(embedding <-> %s::vector) FROM {gallery.table} "
            f"WHERE {gallery.identity_column} = %s AND model_name = %s AND model_version = %s",
            [vec, identity_id, model_name, model_version],
        )
        row = cursor.fetchone()
    return None if row is None or row[0] is None else float(row[0])


def identify(
    gallery: Gallery,
    embeddings: Iterable[Sequence[float] | np.ndarray | None],
    model_name: str,
    model_version: str,
    exact: bool = False,
) -> list[Match]:
    """Nearest identity and runner-up for each embedding (None in, empty match out)."""
    out = []
    for embedding in embeddings:
        found = [] if embedding is None else nearest(gallery, embedding, model_name, model_version, 2, exact)
        out.append(Match(found[0] if found else None, found[1] if len(found) > 1 else None))
    return out
