"""bench/gpu_check.py is ready for a CUDA machine: its CPU part runs here (real LFW photos, batched against one
image per call, throughput at small batches, the batching worker with batching off and on)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LFW = REPO.parent / "shared" / "datasets" / "lfw"


def missing() -> str | None:
    from recognition.engine import registry

    specs = [registry.DETECTOR, registry.get_spec(registry.default_embedder_name())]
    if not all(registry.converted_path(s).is_file() for s in specs):
        return "engine weights cache missing: run `python -m recognition.engine fetch-weights`"
    if not (LFW / "images").is_dir():
        return f"LFW not found at {LFW}"
    return None


MISSING = missing()


@pytest.mark.slow
@pytest.mark.weights
@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
def test_the_cpu_part_of_the_gpu_check(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py"), "--cpu-only", "--quick", "--cpu-threads", "1",
         "--json", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["cuda"] is None and report["cuda_note"]  # says plainly that no GPU was used
    assert report["photos"]["with_faces"] == report["photos"]["count"] == 8
    # Batches as the batching worker makes them give each image exactly its faces alone.
    for name, check in report["checks"].items():
        assert check["pass"] and check["faces"] > 0, (name, check)
        assert check["min_cosine"] >= 0.999 and check["max_box_diff_px"] <= 1.0
    rows = report["throughput"]["cpu"]
    assert {(r["what"], r["batch"]) for r in rows} >= {("detector, 640x480", 1), ("embedder, aligned crops", 8),
                                                       ("whole snapshot, 640x480", 8)}
    assert all(r["per_s"] > 0 for r in rows)
    runs = report["batching_worker"]["cpu"]
    assert {(r["threads"], r["max_batch"]) for r in runs} == {(1, 1), (1, 8), (4, 1), (4, 8)}
    assert all(r["decisions_per_s"] > 0 and not r["errors"] for r in runs)
    assert max(r["mean_batch"] for r in runs if r["threads"] == 4 and r["max_batch"] == 8) > 1.0  # it batched
    assert all(r["mean_batch"] == 1.0 for r in runs if r["max_batch"] == 1 or r["threads"] == 1)
    assert "no CUDA" in result.stdout or "CPU only" in result.stdout
