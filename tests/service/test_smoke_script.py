"""scripts/smoke.py, run as CI runs it: over HTTP against a live server, a real worker and the real engine."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from .conftest import FALLBACK_THRESHOLD, LFW_IMAGES, engine_missing_reason, site_threshold

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
MISSING = engine_missing_reason()
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "smoke.py"


def load_smoke():
    spec = importlib.util.spec_from_file_location("smoke", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.weights
@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")  # before the worker fixture starts
def test_smoke_script_passes(celery_worker_process, live_server, users, capsys):
    from knox.models import AuthToken

    from access.models import Site
    from enrollment.models import Person

    _, token = AuthToken.objects.create(users.owner)
    args = ["--base-url", live_server.url, "--token", token]
    if site_threshold() is None:
        args += ["--threshold", str(FALLBACK_THRESHOLD)]
    code = load_smoke().main(args)
    out = capsys.readouterr().out
    assert code == 0, out + celery_worker_process.log_text()[-3000:]
    assert "SMOKE OK" in out and out.count(" ok") == 3
    assert not Person.objects.exists() and not Site.objects.exists()  # it cleans up after itself


@pytest.mark.skipif(not LFW_IMAGES.is_dir(), reason=f"LFW not found at {LFW_IMAGES}")
def test_smoke_script_fails_loudly_when_the_server_is_down(capsys):
    assert load_smoke().main(["--base-url", "http://127.0.0.1:9", "--token", "x"]) == 2
    assert "not reachable" in capsys.readouterr().err
