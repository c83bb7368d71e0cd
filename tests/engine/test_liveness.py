"""Passive liveness: our MiniFASNet modules against the published weights, upstream's crop geometry,
the optional install (local folder, no network, clear errors) and the real models on NUAA prints."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from recognition.engine import registry
from recognition.engine.liveness import (
    DEFAULT_LIVENESS_THRESHOLD,
    LivenessModel,
    crop_face,
    crop_window,
    liveness_installed,
    upstream_bbox,
)
from recognition.engine.nets.minifasnet import (
    MiniFASNetV1SE,
    MiniFASNetV2,
    convert,
    fuse_batchnorm,
    strip_module_prefix,
)

from .conftest import SHARED, have_weights

ROOT = Path(__file__).resolve().parents[2]
MINIFASNET_DIR = SHARED / "models" / "minifasnet"
NUAA = SHARED / "datasets" / "nuaa-pad"

needs_minifasnet = pytest.mark.skipif(
    not (MINIFASNET_DIR / registry.MINIFASNET_V2.raw_filename).is_file(),
    reason=f"MiniFASNet reference weights not found at {MINIFASNET_DIR} (../shared)",
)
needs_nuaa = pytest.mark.skipif(not (NUAA / "index.csv").is_file(), reason=f"NUAA not found at {NUAA} (../shared)")
# Optional weights: `make weights` installs them from ../shared/models/minifasnet when it is there.
needs_liveness = pytest.mark.skipif(
    not (have_weights(registry.DETECTOR, registry.SFACE) and liveness_installed()),
    reason="liveness weights not installed: run `python -m recognition.engine fetch-weights --from "
    "../shared/models/minifasnet` (make test does when ../shared is there)",
)


# ------------------------------------------------------------------ the networks


@needs_minifasnet
@pytest.mark.parametrize("spec, cls", [(registry.MINIFASNET_V2, MiniFASNetV2),
                                       (registry.MINIFASNET_V1SE, MiniFASNetV1SE)])
def test_published_weights_load_strictly_and_fusing_keeps_outputs(spec, cls):
    raw = torch.load(MINIFASNET_DIR / spec.raw_filename, map_location="cpu", weights_only=True)
    assert all(k.startswith("module.") for k in raw)  # saved from DataParallel
    net = cls()
    result = net.load_state_dict(strip_module_prefix(raw), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # The registry's converter does the same, and its digest is the pinned one.
    assert registry.state_dict_sha256(convert(MINIFASNET_DIR / spec.raw_filename)) == spec.converted_sha256
    net.eval()
    x = torch.rand(3, 3, 80, 80, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        logits = net(x)
        fused = fuse_batchnorm(net)(x)
    assert logits.shape == (3, 3)
    torch.testing.assert_close(fused, logits, atol=1e-4, rtol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fuse_batchnorm(net).modules())


# ------------------------------------------------------------------ crop geometry (upstream CropImage)


def test_box_conversion_truncates_like_upstream():
    # upstream: int(left), int(top), int(right - left + 1), int(bottom - top + 1)
    assert upstream_bbox([10.7, 20.2, 110.9, 140.5]) == (10, 20, 101, 121)


@pytest.mark.parametrize("src, bbox, scale, expected", [
    ((640, 480), (270, 150, 100, 120), 2.7, (185, 48, 455, 372)),  # fits: scaled around the centre
    ((640, 480), (10, 10, 100, 100), 2.7, (0, 0, 270, 270)),  # off the top-left: shifted right/down
    ((640, 480), (600, 440, 30, 30), 4.0, (519, 359, 639, 479)),  # off the bottom-right: shifted back
    ((250, 250), (60, 60, 130, 130), 4.0, (0, 0, 249, 249)),  # too big: scale capped at (249 / 130)
    ((640, 480), (300, 200, 0, 0), 2.7, (299, 199, 301, 201)),  # degenerate box: one pixel, no crash
])
def test_crop_window_is_upstreams_get_new_box(src, bbox, scale, expected):
    assert crop_window(src[0], src[1], bbox, scale) == expected


def test_crop_face_resizes_the_inclusive_window():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    box = [270.4, 150.9, 369.6, 269.2]  # -> (270, 150, 100, 119)
    x1, y1, x2, y2 = crop_window(640, 480, upstream_bbox(box), 2.7)
    crop = crop_face(image, box, 2.7)
    assert crop.shape == (80, 80, 3) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop, cv2.resize(image[y1 : y2 + 1, x1 : x2 + 1], (80, 80)))


@needs_minifasnet
def test_model_gets_bgr_and_batches_agree():
    sds = {s.name: convert(MINIFASNET_DIR / s.raw_filename) for s in registry.LIVENESS.values()}
    model = LivenessModel.from_state_dicts(sds)
    plain = LivenessModel.from_state_dicts(sds, fuse=False, channels_last=False)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    image[..., 0] = 255  # strongly coloured so that a channel swap changes the score
    boxes = np.array([[100, 60, 180, 160], [20, 30, 70, 90], [250, 150, 310, 230]], np.float32)
    together = model.score(image, boxes)
    assert together.shape == (3,) and np.all((together >= 0) & (together <= 1))
    one_by_one = np.array([model.score(image, boxes[i : i + 1])[0] for i in range(3)])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    np.testing.assert_allclose(plain.score(image, boxes), together, atol=1e-4)
    np.testing.assert_allclose(model.score(image[..., ::-1].copy(), boxes, bgr=True), together, atol=1e-6)
    # What the nets see is BGR: scoring the RGB image as if it were BGR gives other numbers.
    assert not np.allclose(model.score(image, boxes, bgr=True), together, atol=1e-3)
    many = model.score_many([(image, boxes[:2]), (image, boxes[:0]), (image, boxes[2:])])
    assert [len(m) for m in many] == [2, 0, 1]
    np.testing.assert_allclose(np.concatenate(many), together, atol=1e-5)
    assert model.score(image, np.zeros((0, 4), np.float32)).shape == (0,)


# ------------------------------------------------------------------ optional install, clear errors


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(registry.MODEL_DIR_ENV, raising=False)

    def no_network(url, timeout=60.0):
        raise registry.WeightsError(f"test: no network ({url})")

    monkeypatch.setattr(registry, "_http_download", no_network)
    return tmp_path / "cache"


def test_liveness_weights_are_optional_and_missing_ones_say_how_to_install(empty_cache):
    assert not liveness_installed()
    assert registry.fetch_liveness(progress=None) is False  # no local copy, network not asked: not an error
    assert registry.MINIFASNET_V2.name not in registry.MODELS  # a plain fetch-weights does not need them
    with pytest.raises(registry.WeightsError, match="liveness is not installed") as info:
        LivenessModel.load()
    assert "fetch-weights --from DIR" in str(info.value) and "fetch-weights --liveness" in str(info.value)
    with pytest.raises(registry.WeightsError, match="fetch-weights --liveness"):
        registry.load_state_dict(registry.MINIFASNET_V1SE)
    with pytest.raises(registry.WeightsError, match="test: no network"):
        registry.fetch_liveness(progress=None, network=True)


def test_every_liveness_model_is_pinned_to_the_upstream_commit():
    for spec in registry.LIVENESS.values():
        assert spec.kind == "liveness" and len(spec.raw_sha256) == 64 and len(spec.converted_sha256) == 64
        assert registry.MINIFASNET_COMMIT in spec.source.url and spec.source.url.endswith(spec.raw_filename)
        assert spec.source.url.startswith("https://raw.githubusercontent.com/minivision-ai/Silent-Face-Anti-Spoofing/")
        assert registry.get_spec(spec.name) is spec


@needs_minifasnet
def test_install_from_a_local_folder_checks_sha256_and_keeps_the_licence(empty_cache, tmp_path):
    assert registry.fetch_liveness(progress=None, local_dirs=[MINIFASNET_DIR]) is True
    assert liveness_installed()
    licence = empty_cache / "raw" / registry.MINIFASNET_LICENCE_FILE
    assert licence.is_file() and "Apache License" in licence.read_text()
    model = LivenessModel.load()
    assert len(model.nets) == 2 and sorted(s for s, _ in model.nets) == [2.7, 4.0]
    # A tampered copy is refused loudly, never installed.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / registry.MINIFASNET_V2.raw_filename).write_bytes(b"not the weights")
    with pytest.raises(registry.WeightsError, match="checksum mismatch"):
        registry.fetch(registry.MINIFASNET_V2, progress=None, force=True, local_dirs=[bad], network=False)


# ------------------------------------------------------------------ the real models on NUAA


def nuaa_sample(per_subject: int = 2) -> list[tuple[Path, str]]:
    with open(NUAA / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    out, seen = [], {}
    for r in rows:
        key = (r["label"], r["subject"])
        if seen.get(key, 0) < per_subject:
            seen[key] = seen.get(key, 0) + 1
            out.append((NUAA / r["file"], r["label"]))
    return out


def largest_face(faces):
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))


@pytest.mark.slow
@pytest.mark.weights
@needs_liveness
@needs_nuaa
def test_live_faces_pass_and_prints_do_not(sface_pipeline):
    from recognition.engine import load_image

    scores = {"live": [], "print": []}
    for path, label in nuaa_sample():
        image = load_image(path)
        faces = sface_pipeline.faces([image], embed=False)[0]
        face = largest_face(faces)
        got = sface_pipeline.score_liveness(image, [face])
        assert got == [face.liveness]
        # Only the face asked for is scored (the service scores just its match candidate).
        assert all(f.liveness is None for f in faces if f is not face)
        scores[label].append(face.liveness)
    assert len(scores["live"]) == len(scores["print"]) == 18
    assert min(scores["live"]) >= DEFAULT_LIVENESS_THRESHOLD, scores["live"]
    assert max(scores["print"]) < DEFAULT_LIVENESS_THRESHOLD, scores["print"]
    assert sface_pipeline.score_liveness(image, []) == []


# ------------------------------------------------------------------ the command line


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "recognition.engine", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.mark.slow
@pytest.mark.weights
@needs_liveness
@needs_nuaa
def test_cli_json_reports_liveness_per_face():
    live = sorted((NUAA / "live").glob("0007_*.jpg"))[0]  # a held-out subject
    attack = sorted((NUAA / "print").glob("0007_*.jpg"))[0]
    proc = run_cli("detect", "--json", "--liveness", str(live), str(attack))
    assert proc.returncode == 0, proc.stderr
    records = {Path(r["image"]).parent.name: r for r in json.loads(proc.stdout)}
    for r in records.values():
        assert r["faces"] and all(0.0 <= f["liveness"] <= 1.0 for f in r["faces"])
    assert largest(records["live"]["faces"])["liveness"] >= DEFAULT_LIVENESS_THRESHOLD
    assert largest(records["print"]["faces"])["liveness"] < DEFAULT_LIVENESS_THRESHOLD
    proc = run_cli("embed", "--json", "--liveness", str(live))
    (record,) = json.loads(proc.stdout)
    assert all("liveness" in f and len(f["embedding"]) == 128 for f in record["faces"])
    proc = run_cli("detect", "--json", str(live))
    assert all("liveness" not in f for f in json.loads(proc.stdout)[0]["faces"])


def largest(faces: list[dict]) -> dict:
    return max(faces, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))


def cache_without_liveness(tmp_path: Path) -> Path:
    """A cache holding the required weights (links to the real ones) and no liveness weights."""
    cache = tmp_path / "cache"
    cache.mkdir()
    for spec in (registry.DETECTOR, registry.SFACE, registry.FACENET):
        (cache / registry.converted_path(spec).name).symlink_to(registry.converted_path(spec))
    return cache


@pytest.mark.weights
@pytest.mark.skipif(not have_weights(registry.DETECTOR, registry.SFACE, registry.FACENET),
                    reason="weights cache empty: run `python -m recognition.engine fetch-weights`")
def test_cli_fetch_without_liveness_succeeds_and_missing_liveness_is_a_clear_error(tmp_path):
    env = {registry.CACHE_ENV: str(cache_without_liveness(tmp_path)), registry.MODEL_DIR_ENV: ""}
    proc = run_cli("fetch-weights", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "liveness (MiniFASNet) is not installed" in proc.stdout
    assert "fetch-weights --from DIR" in proc.stdout and "fetch-weights --liveness" in proc.stdout
    image = tmp_path / "blank.png"
    cv2.imwrite(str(image), np.full((120, 160, 3), 90, np.uint8))
    proc = run_cli("detect", "--json", "--liveness", str(image), env=env)
    assert proc.returncode == 2
    assert "liveness is not installed" in proc.stderr and "fetch-weights --from DIR" in proc.stderr
    proc = run_cli("fetch-weights", "--from", str(tmp_path / "nope"), env=env)
    assert proc.returncode == 2 and "not a folder" in proc.stderr


@pytest.mark.weights
@needs_minifasnet
@pytest.mark.skipif(not have_weights(registry.DETECTOR, registry.SFACE, registry.FACENET),
                    reason="weights cache empty: run `python -m recognition.engine fetch-weights`")
def test_cli_fetch_from_a_folder_installs_liveness(tmp_path):
    cache = cache_without_liveness(tmp_path)
    env = {registry.CACHE_ENV: str(cache), registry.MODEL_DIR_ENV: ""}
    proc = run_cli("fetch-weights", "--from", str(MINIFASNET_DIR), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "liveness (MiniFASNet) included" in proc.stdout
    assert all(registry.converted_path(s).name in os.listdir(cache) for s in registry.LIVENESS.values())
    assert (cache / "raw" / registry.MINIFASNET_LICENCE_FILE).is_file()
