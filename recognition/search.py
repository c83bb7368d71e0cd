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

``hnsw.ef_search`` follows the gallery's size (:func:`ef_search_for`, from PostgreSQL's own row estimate,
:func:`gallery_size`), so that recall stays at 1 as the gallery grows without a setting to tune: the iterative
scan only helps when a filter removes rows; the nearest embedding itself is found by the first ``ef_search``
candidates, and a larger graph needs more of them (docs/running.md, "Scaling out").
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connections, transaction
from pgvector import Vector

from .models import EMBEDDING_DIM, StoredEmbedding

# bench/search_bench.py: recall@1 = 1.000 on genuine probes at 100 over repeated runs (64 was 0.99-1.00) with 100k
# embeddings; with 1M, 100 gave 0.970 and 200 gave 1.000. So: 100 up to 100k, +100 for every tenfold beyond.
DEFAULT_EF_SEARCH = 100
EF_SEARCH_BASE_ROWS = 100_000
EF_SEARCH_MAX = 1000  # pgvector's own limit
SIZE_TTL_S = 60.0  # a process re-reads the gallery's size this often


def ef_search_for(rows: int) -> int:
    """``hnsw.ef_search`` for a gallery of ``rows`` embeddings: 100 up to 100k, then 100 more for every tenfold
    (200 at 1M, 300 at 10M), at most 1000."""
    if rows <= EF_SEARCH_BASE_ROWS:
        return DEFAULT_EF_SEARCH
    grown = DEFAULT_EF_SEARCH * (1.0 + math.log10(rows / EF_SEARCH_BASE_ROWS))
    return min(EF_SEARCH_MAX, int(math.ceil(grown / 10.0) * 10))


_sizes: dict[tuple[str, str], tuple[float, int]] = {}
_sizes_lock = threading.Lock()


def gallery_size(gallery: Gallery, using: str = "default") -> int:
    """About how many embeddings the gallery's table holds (every model's): PostgreSQL's estimate
    (``pg_class.reltuples``, kept by autovacuum's ANALYZE), or a count when the table was never analyzed. Cached
    per process for SIZE_TTL_S: a door's search costs no extra round trip."""
    key = (using, gallery.table)
    now = time.monotonic()
    with _sizes_lock:
        cached = _sizes.get(key)
    if cached is not None and now - cached[0] < SIZE_TTL_S:
        return cached[1]
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [gallery.table])
        row = cursor.fetchone()
        rows = int(row[0]) if row and row[0] is not None else -1
        if rows < 0:  # never analyzed (a new table)
            cursor.execute(f"SELECT count(*) FROM {gallery.table}")
            rows = int(cursor.fetchone()[0])
    with _sizes_lock:
        _sizes[key] = (now, rows)
    return rows


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
    ef_search: int | None = None,
    using: str = "default",
) -> list[Neighbour]:
    """The ``k`` nearest identities to ``embedding`` among the embeddings of one model, nearest first.
    ``ef_search``: None = chosen from the gallery's size (:func:`ef_search_for`)."""
    vec = _vector_text(embedding)
    if ef_search is None and not exact:
        ef_search = ef_search_for(gallery_size(gallery, using))
    # The search settings are SET LOCAL in a block that is rolled back at the end (it only reads): a
    # transaction of its own, or a savepoint inside the caller's, so they never leak to later queries.
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        found = _search(cursor, gallery, vec, model_name, model_version, k, exact, ef_search)
        transaction.set_rollback(True, using=using)
    return found


def _search(
    cursor, gallery: Gallery, vec: str, model_name: str, model_version: str, k: int, exact: bool,
    ef_search: int | None,
) -> list[Neighbour]:
    if exact or ef_search is None:
        return _exact(cursor, gallery, vec, model_name, model_version, k)
    cursor.execute(search_settings_sql(), [str(min(EF_SEARCH_MAX, max(1, int(ef_search))))])  # pgvector: 1..1000
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
