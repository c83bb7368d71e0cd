"""``detect`` / ``embed`` over many images show a progress bar on stderr while stdout keeps only the results
(the JSON unchanged), and offer every detection policy of the service, ``close`` included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from .conftest import needs_weights

ROOT = Path(__file__).resolve().parents[2]
pytestmark = needs_weights


def test_embed_shows_progress_on_stderr_and_json_on_stdout(tmp_path):
    for i in range(3):
        Image.new("RGB", (160, 120), (30 * i, 90, 160)).save(tmp_path / f"blank{i}.jpg")
    proc = subprocess.run([sys.executable, "-m", "recognition.engine", "embed", "--json", "--detection", "close",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)  # nothing but the JSON on stdout
    assert [Path(r["image"]).name for r in records] == ["blank0.jpg", "blank1.jpg", "blank2.jpg"]
    assert "3/3" in proc.stderr and "img" in proc.stderr  # tqdm's bar: done / total


def test_the_close_policy_is_offered():
    proc = subprocess.run([sys.executable, "-m", "recognition.engine", "detect", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert "close" in proc.stdout and "small_faces" in proc.stdout
