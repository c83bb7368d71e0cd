"""The structure holds: one-way layers with the console on top, no import loop inside access, a Django-free
engine, no torch in the web process, one source per setting, and engine and pure tests that need no servers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("console", "access", "enrollment", "recognition", "faceaccess")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def copy_of_the_code(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_import_contracts_hold():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "broken"),
    [
        ("recognition/engine/align.py", "import django", "The engine is a plain PyTorch library"),
        ("recognition/engine/images.py", "from access import decisions", "The engine is a plain PyTorch library"),
        ("enrollment/models.py", "from access.models import Site", "arrows pointing down only"),
        ("faceaccess/uploads.py", "import recognition.search", "arrows pointing down only"),
        ("access/models.py", "import console.dashboard", "arrows pointing down only"),  # nothing imports the console
        ("access/api/urls.py", "from console import forms", "arrows pointing down only"),
        # The loop of issue 15: the worker's code imported by the web intake below it.
        ("access/snapshots/intake.py", "from access import tasks", "No import loop inside access"),
        ("access/decisions.py", "from access.review import tuning", "No import loop inside access"),
        ("access/model_switch/progress.py", "from . import reembed", "No import loop inside access"),
    ],
)
def test_a_wrong_import_breaks_the_check(tmp_path, module, wrong_import, broken):
    root = copy_of_the_code(tmp_path)
    path = root / module
    path.write_text(path.read_text() + f"\n{wrong_import}  # deliberately wrong\n")
    result = lint_imports(root)
    assert result.returncode != 0
    assert f"{broken}" in result.stdout and "BROKEN" in result.stdout, result.stdout


WEB_PROCESS = r"""
import io, sys
import django
django.setup()
from django.conf import settings
from django.urls import get_resolver, URLPattern, URLResolver
from django.test import Client

def views(patterns):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from views(p.url_patterns)
        else:
            yield p.callback

resolver = get_resolver()
n = sum(1 for _ in views(resolver.url_patterns))
from faceaccess.uploads import validate_image_bytes
upload = validate_image_bytes(open(sys.argv[1], "rb").read(), "face.jpg")
client = Client(HTTP_HOST="localhost")
assert client.get("/api/schema/", {"format": "json"}).status_code == 200  # imports every API view and serializer
import access.tasks, enrollment.tasks  # what an upload's enqueue imports  # noqa: E401
print(n, upload.width, upload.height, "torch" in sys.modules)
if len(sys.argv) > 2:
    import recognition.engine.pipeline  # the control: the engine proper does import torch
    print("control", "torch" in sys.modules)
"""


def _web_process(*args: str) -> list[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "faceaccess.settings"}
    result = subprocess.run([sys.executable, "-c", WEB_PROCESS, *args], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


def a_real_jpeg(tmp_path: Path) -> Path:
    """An LFW photo when ../shared is beside the checkout, else a camera-like JPEG made here."""
    lfw = REPO.parent / "shared" / "datasets" / "lfw" / "images" / "Aaron_Eckhart"
    found = sorted(lfw.glob("*.jpg")) if lfw.is_dir() else []
    if found:
        return found[0]
    import numpy as np
    from PIL import Image

    path = tmp_path / "door.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (250, 250, 3), dtype=np.uint8)).save(path)
    return path


def test_the_web_process_never_imports_torch(tmp_path):
    jpeg = a_real_jpeg(tmp_path)
    count, width, height, torch_loaded = _web_process(str(jpeg))
    assert int(count) > 20 and (int(width), int(height)) == (250, 250)
    assert torch_loaded == "False"
    *_, control, torch_after = _web_process(str(jpeg), "control")
    assert (control, torch_after) == ("control", "True")  # the check can see torch when it is there


KNOB = r"""["']FACEACCESS_\w+["']"""
READS = {
    # os.environ / getenv with a FACEACCESS_* name, or a getattr(settings, ...) with a default
    "environment": re.compile(rf"(os\.environ(\.get)?[\[(]\s*{KNOB}|getenv\(\s*{KNOB})"),
    "getattr-default": re.compile(rf"getattr\(\s*settings\s*,\s*{KNOB}\s*,"),
    "env-helper": re.compile(rf"env_(str|int|float|bool|list)\(\s*{KNOB}"),
}
# Where each kind of read may happen: Django's settings module; the engine's own settings module (a library
# without Django); and the launchers that run before Django's settings exist (data dir, embedded servers,
# the `make run` runner), which read their own start-up knobs through faceaccess.env.
ALLOWED = {
    "environment": {"faceaccess/settings.py", "recognition/engine/config.py"},
    "getattr-default": set(),
    "env-helper": {"faceaccess/settings.py", "faceaccess/datadir.py", "faceaccess/runner.py",
                   "faceaccess/embedded/postgres.py"},
}


def test_settings_are_read_in_one_place_each():
    offending = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            text = path.read_text()
            for kind, pattern in READS.items():
                if pattern.search(text) and rel not in ALLOWED[kind]:
                    offending.append(f"{rel}: {kind}")
    assert offending == []


def test_the_settings_scan_finds_a_duplicate_default():
    line = 'limit = getattr(settings, "FACEACCESS_MAX_PIXELS", 40_000_000)'
    assert READS["getattr-default"].search(line)
    assert READS["environment"].search('os.environ.get("FACEACCESS_EMBEDDER")')


def _pytest(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "FACEACCESS_DATA_DIR",
                                                             "MEDIA_ROOT")}
    env["FACEACCESS_TEST_NO_SERVERS"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


def test_engine_and_pure_tests_run_without_postgres_or_redis():
    result = _pytest("tests/engine/test_align.py", "tests/engine/test_gallery.py", "tests/pure")
    assert result.returncode == 0, result.stdout[-3000:]
    # The control: a test that needs the database refuses to run under the same guard.
    result = _pytest("tests/service/test_matching.py::test_nearest_person_and_runner_up")
    assert result.returncode != 0 and "FACEACCESS_TEST_NO_SERVERS is set" in result.stdout
