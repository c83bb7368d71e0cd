"""The command line on good and bad input: JSON for scripts, one-line errors,
never a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import lfw_image, needs_lfw, needs_weights

ROOT = Path(__file__).resolve().parents[2]
pytestmark = needs_weights


def run_cli(*args: str, ok_codes=(0, 1, 2)) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "recognition.engine", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode in ok_codes, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.jpg").write_text("not a picture")
    face = Image.open(lfw_image("Aaron_Eckhart", 1))
    face.convert("L").save(d / "grey.png")
    face.convert("RGBA").save(d / "rgba.png")
    Image.fromarray(np.asarray(face.convert("L"), np.uint16) * 257).save(d / "sixteen.png")
    Image.new("L", (8000, 8000), 90).save(d / "huge.png")
    Image.new("RGB", (320, 240), (40, 90, 160)).save(d / "noface.jpg")
    return d


@needs_lfw
def test_detect_json_reports_each_bad_file_and_goes_on(bad_files):
    names = ["empty.jpg", "text.jpg", "grey.png", "rgba.png", "sixteen.png", "huge.png", "noface.jpg"]
    proc = run_cli("detect", "--json", *[str(bad_files / n) for n in names], str(bad_files / "missing.jpg"))
    assert proc.returncode == 1  # some images failed
    records = {Path(r["image"]).name: r for r in json.loads(proc.stdout)}
    assert "empty" in records["empty.jpg"]["error"]
    assert "not an image" in records["text.jpg"]["error"]
    assert "pixels" in records["huge.png"]["error"]
    assert "cannot read" in records["missing.jpg"]["error"]
    for n in ("grey.png", "rgba.png", "sixteen.png"):
        faces = records[n]["faces"]
        assert len(faces) == 1 and "error" not in records[n], n
        assert set(faces[0]) >= {"box", "score", "landmarks"} and "embedding" not in faces[0]
    assert records["noface.jpg"]["faces"] == []


@needs_lfw
def test_embed_json_has_unit_embeddings_for_a_directory(tmp_path):
    for i in (1, 2):
        Image.open(lfw_image("Colin_Powell", i)).save(tmp_path / f"a{i}.jpg")
    proc = run_cli("embed", "--json", str(tmp_path), ok_codes=(0,))
    records = json.loads(proc.stdout)
    assert len(records) == 2
    for r in records:
        (face,) = r["faces"]
        assert len(face["embedding"]) == 128
        assert abs(np.linalg.norm(face["embedding"]) - 1) < 1e-4
        assert len(face["landmarks"]) == 5 and len(face["box"]) == 4


@needs_lfw
def test_compare_encode_recognize(tmp_path):
    proc = run_cli("compare", str(lfw_image("Colin_Powell", 1)), str(lfw_image("Colin_Powell", 2)), ok_codes=(0,))
    assert "same person" in proc.stdout
    proc = run_cli("compare", str(lfw_image("Colin_Powell", 1)), str(lfw_image("Serena_Williams", 1)), ok_codes=(0,))
    assert "different people" in proc.stdout
    db_dir = tmp_path / "people"
    db_dir.mkdir()
    for name, n in [("Colin_Powell", 1), ("Serena_Williams", 1), ("Tony_Blair", 2)]:
        Image.open(lfw_image(name, n)).save(db_dir / f"{name.split('_')[0]}_{n}.jpg")
    (db_dir / "Nobody_1.jpg").write_bytes(np.zeros(10, np.uint8).tobytes())
    proc = run_cli("encode", str(db_dir), "-o", str(tmp_path / "db.npz"), ok_codes=(0,))
    assert "encoded 3 face(s) of 3 people" in proc.stdout and "skipped" in proc.stdout and "Nobody_1" in proc.stdout
    out = tmp_path / "annotated.jpg"
    proc = run_cli("recognize", str(lfw_image("Colin_Powell", 3)), "--db", str(tmp_path / "db.npz"), "--out", str(out),
                   ok_codes=(0,))
    assert "face #0: Colin" in proc.stdout
    assert Image.open(out).size == (250, 250)
    proc = run_cli("recognize", str(lfw_image("George_W_Bush", 1)), "--db", str(tmp_path / "db.npz"), ok_codes=(0,))
    assert "face #0: Unknown" in proc.stdout


def test_user_errors_are_one_line():
    proc = run_cli("compare", "/nonexistent/a.jpg", "/nonexistent/b.jpg")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: cannot read")
    proc = run_cli("recognize", str(lfw_image("Colin_Powell", 1)), "--db", "/nonexistent/db.npz")
    assert proc.returncode == 2 and "error:" in proc.stderr
