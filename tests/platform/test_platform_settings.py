"""Settings come from the environment, with defaults that match the embedded servers of `make run`,
and anything but PostgreSQL is refused. Each case loads settings in a fresh interpreter with a
controlled environment (settings are evaluated once per process)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import json
from django.conf import settings
from faceaccess.celery import app

route = lambda name: app.amqp.router.route({}, name)["queue"].name
db = settings.DATABASES["default"]
print(json.dumps({
    "db": {k: db[k] for k in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "CONN_MAX_AGE")},
    "redis_url": settings.REDIS_URL,
    "secret_key": settings.SECRET_KEY,
    "debug": settings.DEBUG,
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "media_root": str(settings.MEDIA_ROOT),
    "max_upload": settings.FACEACCESS_MAX_UPLOAD_BYTES,
    "max_pixels": settings.FACEACCESS_MAX_PIXELS,
    "embedder": settings.FACEACCESS_EMBEDDER,
    "apps": settings.INSTALLED_APPS,
    "auth": settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"],
    "celery": {k: app.conf[k] for k in ("broker_url", "result_backend", "task_acks_late",
        "task_reject_on_worker_lost", "worker_prefetch_multiplier", "task_time_limit", "task_soft_time_limit",
        "task_serializer", "accept_content", "worker_proc_alive_timeout")},
    "visibility_timeout": app.conf.broker_transport_options["visibility_timeout"],
    "routes": {n: route(n) for n in ("access.tasks.process_snapshot", "enrollment.tasks.embed_face_image",
                                     "access.tasks.reembed_chunk", "faceaccess.health_check")},
    "queue_order": app.conf.broker_transport_options["queue_order_strategy"],
}))
"""


def load(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
             "DJANGO_SETTINGS_MODULE": "faceaccess.settings", "FACEACCESS_DATA_DIR": str(tmp_path / "data"),
             "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=clean, capture_output=True, text=True,
                          timeout=120)


def settings_of(tmp_path: Path, **env: str) -> dict:
    result = load(tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_defaults_point_at_the_embedded_servers_with_stored_secrets(tmp_path):
    s = settings_of(tmp_path)
    secrets_dir = tmp_path / "data" / "secrets"
    pg_password = (secrets_dir / "postgres-password").read_text().strip()
    redis_password = (secrets_dir / "redis-password").read_text().strip()
    assert s["db"] == {"ENGINE": "django.db.backends.postgresql", "NAME": "faceaccess", "USER": "faceaccess",
                       "PASSWORD": pg_password, "HOST": "127.0.0.1", "PORT": 54329, "CONN_MAX_AGE": 60}
    assert s["redis_url"] == f"redis://:{redis_password}@127.0.0.1:63799/0"
    assert s["secret_key"] == (secrets_dir / "django-secret-key").read_text().strip()
    assert len(s["secret_key"]) >= 50
    for name in ("postgres-password", "redis-password", "django-secret-key"):
        assert stat.S_IMODE((secrets_dir / name).stat().st_mode) == 0o600
    assert s["debug"] is False
    assert s["media_root"] == str(tmp_path / "data" / "media")
    assert s["max_upload"] == 10 * 1024 * 1024
    assert s["max_pixels"] == 40_000_000
    assert s["embedder"] is None
    # A restart reuses the same secrets (sessions, DB password and Redis password stay valid).
    again = settings_of(tmp_path)
    assert (again["secret_key"], again["db"]["PASSWORD"], again["redis_url"]) == (
        s["secret_key"], s["db"]["PASSWORD"], s["redis_url"])


def test_apps_auth_and_celery_reliability_settings(tmp_path):
    s = settings_of(tmp_path)
    for app in ("access", "enrollment", "recognition", "rest_framework", "knox", "drf_spectacular"):
        assert app in s["apps"]
    assert "pgvector.django" not in s["apps"]  # not an app: E's first migration creates the extension
    assert s["auth"] == ["knox.auth.TokenAuthentication",
                         "rest_framework.authentication.SessionAuthentication"]
    c = s["celery"]
    assert c["broker_url"] == c["result_backend"] == s["redis_url"]
    assert (c["task_acks_late"], c["task_reject_on_worker_lost"], c["worker_prefetch_multiplier"]) == (True, True, 1)
    assert c["task_soft_time_limit"] < c["task_time_limit"] < s["visibility_timeout"]
    assert (c["task_serializer"], c["accept_content"]) == ("json", ["json"])
    assert c["worker_proc_alive_timeout"] >= 60  # a pool child may load the engine before it reports up
    assert s["routes"] == {"access.tasks.process_snapshot": "gpu", "enrollment.tasks.embed_face_image": "gpu-bulk",
                           "access.tasks.reembed_chunk": "gpu-bulk", "faceaccess.health_check": "celery"}
    assert s["queue_order"] == "priority"  # a worker takes the doors' queue first (-Q gpu,gpu-bulk)


def test_environment_overrides(tmp_path):
    s = settings_of(
        tmp_path,
        DATABASE_URL="postgresql://app:p%40ss@db.internal:5433/faces",
        REDIS_URL="redis://:pw@cache.internal:6380/2",
        SECRET_KEY="k" * 60, DEBUG="1", ALLOWED_HOSTS="faces.example.com, 10.0.0.5",
        MEDIA_ROOT=str(tmp_path / "m"), FACEACCESS_MAX_UPLOAD_BYTES="1000", FACEACCESS_MAX_PIXELS="2_000_000",
        FACEACCESS_EMBEDDER="sface", FACEACCESS_TASK_TIME_LIMIT="90", FACEACCESS_TASK_SOFT_TIME_LIMIT="60",
    )
    assert (s["db"]["USER"], s["db"]["PASSWORD"], s["db"]["HOST"], s["db"]["PORT"], s["db"]["NAME"]) == (
        "app", "p@ss", "db.internal", 5433, "faces")
    assert s["redis_url"] == s["celery"]["broker_url"] == "redis://:pw@cache.internal:6380/2"
    assert s["secret_key"] == "k" * 60 and s["debug"] is True
    assert s["allowed_hosts"] == ["faces.example.com", "10.0.0.5"]
    assert s["media_root"] == str(tmp_path / "m")
    assert (s["max_upload"], s["max_pixels"], s["embedder"]) == (1000, 2_000_000, "sface")
    assert (s["celery"]["task_time_limit"], s["celery"]["task_soft_time_limit"]) == (90, 60)
    # External servers: no embedded-server passwords are generated.
    assert not (tmp_path / "data" / "secrets" / "postgres-password").exists()


@pytest.mark.parametrize("url", ["sqlite:////tmp/faces.db", "mysql://root:hunter2@db/faces",
                                 "bogus://root:hunter2@db/x", "hunter2"])
def test_anything_but_postgresql_is_refused(tmp_path, url):
    result = load(tmp_path, DATABASE_URL=url)
    assert result.returncode != 0
    assert "DATABASE_URL must be a PostgreSQL URL" in result.stderr
    assert "hunter2" not in result.stderr  # the refusal never echoes credentials


def test_bad_values_are_named(tmp_path):
    result = load(tmp_path, FACEACCESS_MAX_UPLOAD_BYTES="ten megabytes")
    assert result.returncode != 0 and "FACEACCESS_MAX_UPLOAD_BYTES" in result.stderr
    result = load(tmp_path, REDIS_URL="http://cache:6379")
    assert result.returncode != 0 and "REDIS_URL must start with redis://" in result.stderr
