"""Nearest-PERSON search in PostgreSQL + pgvector: exact scan vs HNSW, latency and recall@1.

    .venv/bin/python bench/search_bench.py                  # throwaway embedded PostgreSQL 18
    DATABASE_URL=postgresql://... .venv/bin/python bench/search_bench.py   # an existing server

Data: 1,000 people x 100 unit 128-d embeddings (100k rows) in a scratch schema `bench_search` (never
the app's tables). Each person is a random unit centre; their embeddings are normalize(centre + 0.6 *
gaussian / sqrt(128)), which puts two photos of one person ~0.73 apart and two people ~1.41 apart,
roughly how face embeddings behave. Probes: "genuine" = a fresh sample of a random enrolled person;
"stranger" = a uniform random unit vector (no person is close; the nearest one is a near-tie).

A person's distance is the minimum over their embeddings. Strategies, each returning the nearest
person and the runner-up (second-nearest other person) with their distances:
- exact:   sequential scan, GROUP BY person, ORDER BY min distance, LIMIT 2 (the ground truth).
- window:  HNSW top-W embeddings grouped by person; W grows 16 -> 64 -> 256 -> 1024 until two people
           appear (what recognition/search.py does).
- twostep: HNSW nearest embedding gives the person; a second HNSW scan with `person_id <> that person`
           (pgvector 0.8 iterative scan) gives the runner-up. One statement, two index scans.
recall@1 = share of probes whose nearest person equals the exact one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SCHEMA = "bench_search"
DIM = 128
WINDOWS = (16, 64, 256, 1024)


def make_data(people: int, per_person: int, n_queries: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    centres = unit(rng.standard_normal((people, DIM)))
    owners = np.repeat(np.arange(people, dtype=np.int32), per_person)
    gallery = unit(centres[owners] + spread * rng.standard_normal((people * per_person, DIM)) / np.sqrt(DIM))
    probe_people = rng.integers(0, people, n_queries)
    genuine = unit(centres[probe_people] + spread * rng.standard_normal((n_queries, DIM)) / np.sqrt(DIM))
    stranger = unit(rng.standard_normal((n_queries, DIM)))
    return owners, gallery, {"genuine": genuine, "stranger": stranger}


def load(conn, owners: np.ndarray, gallery: np.ndarray, m: int, ef_construction: int) -> dict[str, float]:
    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    conn.execute(f"CREATE SCHEMA {SCHEMA}")
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    conn.execute(f"CREATE TABLE {SCHEMA}.embedding (id bigserial PRIMARY KEY, person_id int NOT NULL, "
                 f"embedding vector({DIM}) NOT NULL)")
    started = time.perf_counter()
    with conn.cursor().copy(f"COPY {SCHEMA}.embedding (person_id, embedding) FROM STDIN WITH (FORMAT BINARY)") as cp:
        cp.set_types(["int4", "vector"])
        for owner, vec in zip(owners.tolist(), gallery, strict=True):
            cp.write_row([owner, vec])
    loaded = time.perf_counter()
    conn.execute("SET maintenance_work_mem = '1GB'")  # build the graph in memory
    conn.execute(f"CREATE INDEX ON {SCHEMA}.embedding USING hnsw (embedding vector_l2_ops) "
                 f"WITH (m = {m}, ef_construction = {ef_construction})")
    built = time.perf_counter()
    conn.execute(f"VACUUM ANALYZE {SCHEMA}.embedding")
    return {"copy_s": round(loaded - started, 2), "index_build_s": round(built - loaded, 2)}


EXACT_SQL = (f"SELECT person_id, min(embedding <-> %(q)s) AS d FROM {SCHEMA}.embedding "
             "GROUP BY person_id ORDER BY d LIMIT 2")
WINDOW_SQL = (f"SELECT person_id, embedding <-> %(q)s AS d FROM {SCHEMA}.embedding "
              "ORDER BY embedding <-> %(q)s LIMIT %(w)s")
TWOSTEP_SQL = f"""
WITH nearest AS MATERIALIZED (
    SELECT person_id, embedding <-> %(q)s AS d FROM {SCHEMA}.embedding ORDER BY embedding <-> %(q)s LIMIT 1
)
SELECT person_id, d FROM nearest
UNION ALL
(SELECT person_id, embedding <-> %(q)s FROM {SCHEMA}.embedding
 WHERE person_id <> (SELECT person_id FROM nearest) ORDER BY embedding <-> %(q)s LIMIT 1)
"""


def search_exact(cur, q) -> list[tuple[int, float]]:
    cur.execute(EXACT_SQL, {"q": q})
    return cur.fetchall()


def search_window(cur, q) -> list[tuple[int, float]]:
    for window in WINDOWS:
        cur.execute(WINDOW_SQL, {"q": q, "w": window})
        rows = cur.fetchall()
        best: dict[int, float] = {}
        for person, d in rows:
            best[person] = min(d, best.get(person, d))
        if len(best) >= 2 or len(rows) < window:
            return sorted(best.items(), key=lambda kv: kv[1])[:2]
    return search_exact(cur, q)


def search_twostep(cur, q) -> list[tuple[int, float]]:
    cur.execute(TWOSTEP_SQL, {"q": q})
    return cur.fetchall()


STRATEGIES = {"exact": search_exact, "window": search_window, "twostep": search_twostep}


def run(conn, strategy: str, probes: np.ndarray, ef_search: int | None) -> tuple[list, list[float]]:
    with conn.cursor() as cur:
        if strategy == "exact":
            cur.execute("SET enable_indexscan = off")  # sequential scan: no approximation
        else:
            cur.execute("SET enable_indexscan = on")
            cur.execute(f"SET hnsw.ef_search = {ef_search}")
            cur.execute("SET hnsw.iterative_scan = strict_order")
        fn = STRATEGIES[strategy]
        for q in probes[:5]:  # warm the caches and psycopg's prepared statements
            fn(cur, q)
        answers, times = [], []
        for q in probes:
            started = time.perf_counter()
            answers.append(fn(cur, q))
            times.append((time.perf_counter() - started) * 1000)
    return answers, times


def check_plans(conn, probe) -> dict[str, bool]:
    """Make sure the HNSW strategies really use the index and exact really doesn't."""
    with conn.cursor() as cur:
        cur.execute("SET enable_indexscan = on")
        plans = {}
        cases = (("window", WINDOW_SQL, {"q": probe, "w": 16}), ("twostep", TWOSTEP_SQL, {"q": probe}))
        for name, sql, params in cases:
            cur.execute("EXPLAIN " + sql, params)
            plans[name] = "embedding_embedding_idx" in "\n".join(r[0] for r in cur.fetchall())
        cur.execute("SET enable_indexscan = off")
        cur.execute("EXPLAIN " + EXACT_SQL, {"q": probe})
        plans["exact_uses_index"] = "embedding_embedding_idx" in "\n".join(r[0] for r in cur.fetchall())
    return plans


def percentile(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pgvector nearest-person search benchmark")
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--per-person", type=int, default=100)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--spread", type=float, default=0.6, help="within-person noise (see the docstring)")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=64)
    parser.add_argument("--ef-search", nargs="+", default=["40", "64", "100", "200", "400", "auto"],
                        help="values to measure; auto: what recognition/search.py picks for this gallery's size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=1.0,
                        help="decision threshold for 'decision same' (genuine pairs ~0.73 apart, strangers ~1.41)")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "search_bench.json")
    parser.add_argument("--keep", action="store_true", help="keep the bench_search schema afterwards")
    args = parser.parse_args(argv)

    import psycopg
    from pgvector.psycopg import register_vector

    server = tmp = None
    url = os.environ.get("DATABASE_URL")
    if not url:
        from faceaccess.embedded import EmbeddedPostgres, free_port

        tmp = Path(tempfile.mkdtemp(prefix="faceaccess-bench-"))
        tmp.chmod(0o755)
        server = EmbeddedPostgres(tmp / "pgdata", port=free_port(), password="bench", durable=False,
                                  settings={"shared_buffers": "512MB"})
        url = server.start()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            register_vector(conn)
            version = conn.execute("SELECT current_setting('server_version'), "
                                   "(SELECT extversion FROM pg_extension WHERE extname = 'vector')").fetchone()
            owners, gallery, probe_sets = make_data(args.people, args.per_person, args.queries, args.spread, args.seed)
            print(f"PostgreSQL {version[0]}, pgvector {version[1]}; loading {len(gallery):,} embeddings of "
                  f"{args.people:,} people, HNSW m={args.m} ef_construction={args.ef_construction} ...", flush=True)
            build = load(conn, owners, gallery, args.m, args.ef_construction)
            auto = _auto_ef_search(len(gallery))
            ef_values = sorted({auto if ef == "auto" else int(ef) for ef in args.ef_search})
            print(f"ef_search chosen for {len(gallery):,} embeddings: {auto}", flush=True)
            plans = check_plans(conn, probe_sets["genuine"][0])
            if not (plans["window"] and plans["twostep"]) or plans["exact_uses_index"]:
                # (on a tiny table the planner rightly prefers a sequential scan)
                print(f"warning: unexpected query plans {plans}: HNSW rows below are not index searches")
            rows = []
            for probe_kind, probes in probe_sets.items():
                truth, times = run(conn, "exact", probes, None)
                rows.append(summary(probe_kind, "exact", None, times, truth, truth, args.threshold))
                # Sanity: the database's exact answer agrees with NumPy's brute force.
                brute = [int(owners[np.argmin(np.linalg.norm(gallery - q, axis=1))]) for q in probes]
                agree = np.mean([t[0][0] == b for t, b in zip(truth, brute, strict=True)])
                assert agree >= 0.995, f"exact SQL disagrees with NumPy on {1 - agree:.1%} of probes"
                for strategy in ("window", "twostep"):
                    for ef in ef_values:
                        answers, times = run(conn, strategy, probes, ef)
                        rows.append(summary(probe_kind, strategy, ef, times, answers, truth, args.threshold))
            if not args.keep:
                conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)

    print_table(rows)
    report = {
        "postgres": version[0], "pgvector": version[1], "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "people": args.people, "per_person": args.per_person, "rows": len(gallery), "queries": args.queries,
        "spread": args.spread, "hnsw": {"m": args.m, "ef_construction": args.ef_construction,
                                        "iterative_scan": "strict_order"},
        **build, "plans_use_hnsw": plans, "ef_search_auto": auto, "results": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


def _auto_ef_search(rows: int) -> int:
    """What recognition/search.py chooses for a gallery of ``rows`` embeddings (the module needs Django loaded)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "faceaccess.settings")
    django.setup()
    from recognition.search import ef_search_for

    return ef_search_for(rows)


def _decision(answer: list, threshold: float) -> int | None:
    """The door's answer from the nearest person: that person within the threshold, else unknown (None)."""
    return answer[0][0] if answer and answer[0][1] <= threshold else None


def summary(probes: str, strategy: str, ef: int | None, times: list[float], answers: list, truth: list,
            threshold: float) -> dict:
    top1 = np.mean([a[0][0] == t[0][0] for a, t in zip(answers, truth, strict=True)])
    same = np.mean([_decision(a, threshold) == _decision(t, threshold) for a, t in zip(answers, truth, strict=True)])
    second = np.mean([len(a) > 1 and a[1][0] == t[1][0] for a, t in zip(answers, truth, strict=True)])
    # How far off the runner-up distance is (it feeds the margin between the two nearest people).
    gap = [abs(a[1][1] - t[1][1]) for a, t in zip(answers, truth, strict=True) if len(a) > 1]
    return {"probes": probes, "strategy": strategy, "ef_search": ef, "median_ms": round(statistics.median(times), 3),
            "p99_ms": round(percentile(times, 99), 3), "recall_at_1": round(float(top1), 4),
            "runner_up_same_person": round(float(second), 4), "decision_same": round(float(same), 4),
            "runner_up_distance_max_error": round(float(max(gap)) if gap else float("nan"), 4)}


def print_table(rows: list[dict]) -> None:
    header = f"{'probes':9} {'strategy':8} {'ef_search':>9} {'median ms':>10} {'p99 ms':>8} {'recall@1':>9} " \
             f"{'2nd same':>9} {'2nd d err':>10} {'decision':>9}"
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        ef = "-" if r["ef_search"] is None else str(r["ef_search"])
        print(f"{r['probes']:9} {r['strategy']:8} {ef:>9} {r['median_ms']:>10.2f} {r['p99_ms']:>8.2f} "
              f"{r['recall_at_1']:>9.3f} {r['runner_up_same_person']:>9.3f} {r['runner_up_distance_max_error']:>10.4f} "
              f"{r['decision_same']:>9.3f}")


if __name__ == "__main__":
    sys.exit(main())
