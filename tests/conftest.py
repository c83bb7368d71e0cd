"""Test-session plumbing shared by every test directory.

- At start-up only cheap things happen: the session's data dir (secret key, MEDIA_ROOT) is a temp dir
  and Django's settings are loaded from it. No server is started, so `pytest tests/engine` needs
  neither PostgreSQL nor Redis.
- The first test that needs a database (pytest-django's `django_db_setup`) or the `service_urls`
  fixture starts a throwaway PostgreSQL 18 + pgvector and a throwaway Redis on free loopback ports
  (unless DATABASE_URL / REDIS_URL are set) and points the loaded settings at them.
- `celery_worker_process`: a real `celery -A faceaccess worker` subprocess on the test database; use it
  with `transactional_db` / `@pytest.mark.django_db(transaction=True)` so the worker sees committed rows.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKER_READY_TIMEOUT_S = 120.0


@dataclass
class _Session:
    tmp: Path | None = None
    servers: list = field(default_factory=list)
    started: bool = False
    # What DATABASE_URL / REDIS_URL were before the session: set means external servers.
    given: dict = field(default_factory=dict)


_session = _Session()


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("help", False) or config.getoption("version", 0):
        return
    tmp = Path(tempfile.mkdtemp(prefix="faceaccess-test-"))
    tmp.chmod(0o755)  # the unprivileged PostgreSQL account must reach pgdata inside it
    _session.tmp = tmp
    _session.given = {name: os.environ.get(name) for name in ("DATABASE_URL", "REDIS_URL")}
    os.environ["FACEACCESS_DATA_DIR"] = str(tmp / "data")
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "faceaccess.settings")
    from django.conf import settings

    # Load the settings now, from the environment above; pytest-django's own pytest_configure
    # (trylast) then sees them configured and runs django.setup(). Nothing connects yet.
    settings.INSTALLED_APPS  # noqa: B018


def _start_services() -> None:
    """Start the throwaway servers (once per session) and point the loaded settings at them."""
    if _session.started:
        return
    if os.environ.get("FACEACCESS_TEST_NO_SERVERS"):  # set by the test that proves engine tests need none
        raise RuntimeError("this test needs PostgreSQL and Redis, and FACEACCESS_TEST_NO_SERVERS is set")
    _session.started = True
    from faceaccess.embedded import EmbeddedPostgres, EmbeddedRedis, free_port

    tmp = _session.tmp
    assert tmp is not None
    if not _session.given["DATABASE_URL"]:
        pg = EmbeddedPostgres(tmp / "pgdata", port=free_port(), password=secrets.token_urlsafe(16),
                              log_path=tmp / "log" / "postgres.log", durable=False)
        _session.servers.append(pg)
        os.environ["DATABASE_URL"] = _start_on_a_free_port(pg)
    if not _session.given["REDIS_URL"]:
        rd = EmbeddedRedis(tmp / "redis", port=free_port(), password=secrets.token_urlsafe(16),
                           log_path=tmp / "log" / "redis.log", durable=False)
        _session.servers.append(rd)
        os.environ["REDIS_URL"] = _start_on_a_free_port(rd)
    _repoint_loaded_settings()


def _start_on_a_free_port(server) -> str:
    """Another process (a parallel test session) may take the free port before the server binds it."""
    from faceaccess.embedded import ServiceError, free_port

    for attempt in range(3):
        try:
            return server.start()
        except ServiceError:
            if attempt == 2:
                raise
            server.port = free_port()
    raise AssertionError("unreachable")


def _repoint_loaded_settings() -> None:
    """The settings were loaded before the servers existed: point them here now (no connection has been
    opened yet, and Django reads these dicts lazily)."""
    from django.conf import settings

    from faceaccess.settings import database_config

    settings.DATABASES["default"].update(database_config(os.environ["DATABASE_URL"]))
    settings.REDIS_URL = settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = os.environ["REDIS_URL"]
    settings.MEDIA_ROOT = Path(os.environ["MEDIA_ROOT"])
    from faceaccess.celery import app

    if app.configured:
        app.conf.update(broker_url=os.environ["REDIS_URL"], result_backend=os.environ["REDIS_URL"])


def pytest_unconfigure(config: pytest.Config) -> None:
    for server in reversed(_session.servers):
        server.stop()
    _session.servers.clear()
    if _session.tmp is not None:
        shutil.rmtree(_session.tmp, ignore_errors=True)
        _session.tmp = None


@dataclass(frozen=True)
class ServiceURLs:
    database_url: str
    redis_url: str
    media_root: Path
    embedded_database: bool  # False when DATABASE_URL was given
    embedded_redis: bool


@pytest.fixture(scope="session")
def service_urls() -> ServiceURLs:
    """The PostgreSQL / Redis / media the session uses, started on first use (the database is the
    server's, not pytest-django's test_ database: for that, see `connection.settings_dict` after
    `django_db_setup`)."""
    _start_services()
    kinds = {type(server).__name__ for server in _session.servers}
    return ServiceURLs(os.environ["DATABASE_URL"], os.environ["REDIS_URL"], Path(os.environ["MEDIA_ROOT"]),
                       "EmbeddedPostgres" in kinds, "EmbeddedRedis" in kinds)


def database_url_for(settings_dict: dict) -> str:
    """A postgresql:// URL for a Django connection's settings (e.g. the test database)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if user else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgresql://{auth}{host}:{port}/{quote(settings_dict['NAME'], safe='')}"


@pytest.fixture(scope="session")
def django_db_setup(service_urls, django_db_setup):
    """pytest-django's test database, on the servers this session starts first."""
    yield


@dataclass
class CeleryWorker:
    proc: subprocess.Popen
    hostname: str
    log_path: Path
    env: dict

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"celery worker exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}")


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, tmp_path_factory) -> CeleryWorker:
    """A real `celery -A faceaccess worker -Q gpu,gpu-bulk,celery -c 1` subprocess, connected to pytest-django's
    test database, the session's Redis and MEDIA_ROOT. Session-scoped: the engine loads once.

    Tests that use it must commit their rows (transactional_db / django_db(transaction=True))."""
    from django.conf import settings
    from django.db import connection

    from faceaccess.celery import app
    from faceaccess.embedded.process import die_with_parent

    hostname = f"pytest-{uuid.uuid4().hex[:8]}@%h"
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for(connection.settings_dict),
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DJANGO_SETTINGS_MODULE": "faceaccess.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    queues = f"{settings.ENGINE_QUEUES},celery"
    argv = [sys.executable, "-m", "celery", "-A", "faceaccess", "worker", "-Q", queues, "-c", "1",
            "-P", "prefork", "-l", "INFO", "-n", hostname, "--without-gossip", "--without-mingle"]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent())
    worker = CeleryWorker(proc, hostname.replace("%h", _node_host()), log_path, env)
    try:
        _wait_worker_ready(app, worker)
        yield worker
    finally:
        _stop_worker(proc)


def _node_host() -> str:
    import socket

    return socket.gethostname()


def _wait_worker_ready(app, worker: CeleryWorker) -> None:
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        worker.assert_alive()
        replies = app.control.ping(destination=[worker.hostname], timeout=1.0)
        if any(worker.hostname in reply for reply in replies):
            return
    raise AssertionError(f"celery worker not ready after {WORKER_READY_TIMEOUT_S:.0f}s:\n{worker.log_text()[-4000:]}")


def _stop_worker(proc: subprocess.Popen) -> None:
    # SIGTERM = warm shutdown (finish the current task), then SIGQUIT (cold); last, SIGKILL to the
    # worker's whole process group so no pool child outlives it.
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGQUIT, 10)):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


@contextmanager
def web_process(env: dict, port: int, log_path: Path, threads: int, host: str = "127.0.0.1") -> Iterator[str]:
    """The web server as `make run` starts it (``faceaccess.runner.web_command``) in a subprocess with ``env``,
    listening on ``host``, up once ``/healthz`` answers; its base URL. Stopped (and killed if it must be) on the
    way out."""
    from faceaccess.embedded.process import die_with_parent
    from faceaccess.http_client import http
    from faceaccess.runner import web_command

    with open(log_path, "wb") as log:
        proc = subprocess.Popen(web_command(host, port, threads), cwd=REPO_ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=die_with_parent())
    base = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 60
        while http("GET", f"{base}/healthz", timeout=2.0).status != 200:
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
