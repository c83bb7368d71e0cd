"""`make run`: the whole system on one machine, in the foreground, until Ctrl-C.

Starts (in this order) the embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are given,
migrates, makes sure an admin account exists, then the Celery engine worker, the web server (waitress,
held against slow clients: `faceaccess.serve`) and the camera bridge (`manage.py run_bridge`). While it runs it
watches the embedded PostgreSQL and Redis and restarts one that died (on the same port and data, saying so); the
web server and the worker reconnect by themselves. It restarts a worker or the web server that exited (giving up
after repeated quick failures), and a worker that is alive but has stopped taking messages from its queue
(`faceaccess.watchdog`). Ctrl-C (or SIGTERM) stops everything in reverse order; all state stays under the data dir.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from .datadir import REPO_ROOT, data_dir, stored_secret
from .embedded import DEFAULT_PG_PORT, DEFAULT_REDIS_PORT, EmbeddedPostgres, EmbeddedRedis, ServiceError
from .embedded.process import die_with_parent, port_is_open
from .env import env_int, env_str
from .watchdog import QueueWatch, Watchdog, oldest_message, worker_busy


class Stop(Exception):
    """SIGTERM / SIGHUP: leave the main loop the same way Ctrl-C does."""


def _raise_stop(signum: int, frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


def say(message: str) -> None:
    print(f"[faceaccess] {message}", flush=True)


def _lock_data_dir(data: Path) -> int:
    """One `make run` per data dir: a second one would fight over the same database files."""
    fd = os.open(data / "run.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SystemExit(f"FaceAccess is already running with data dir {data} (lock {data / 'run.lock'}).") from None
    return fd


@dataclass
class Supervised:
    """An embedded server the runner started, and restarts when it dies."""

    name: str
    server: EmbeddedPostgres | EmbeddedRedis
    address: str
    restarts: int = 0
    next_try: float = 0.0
    backoff: float = 1.0

    def check(self) -> None:
        """Restart the server if it exited; a failed restart is tried again later (1, 2, 4 ... 30 s)."""
        proc = self.server.proc
        if proc is not None and proc.poll() is None:
            return
        now = time.monotonic()
        if proc is not None:  # the exit is news
            say(f"{self.name} exited unexpectedly ({_exit_text(proc.returncode)}); restarting it")
            self.server.proc = None
            self.next_try, self.backoff = now, 1.0
        if now < self.next_try:
            return
        try:
            self.server.start(adopt_orphan=True)  # we hold the data-dir lock: anything left on it is ours
        except (ServiceError, OSError) as exc:
            self.server.proc = None
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            say(f"could not restart {self.name} ({reason}); trying again in {self.backoff:.0f} s")
            self.next_try = time.monotonic() + self.backoff
            self.backoff = min(self.backoff * 2, 30.0)
            return
        self.restarts += 1
        say(f"{self.name} restarted on {self.address} ({self.restarts} restart{'s' * (self.restarts > 1)} "
            "since start-up)")


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _start_services(stack: ExitStack, data: Path) -> list[Supervised]:
    """Start the embedded servers that DATABASE_URL / REDIS_URL do not replace; returns them for supervision."""
    supervised: list[Supervised] = []
    if not env_str("DATABASE_URL"):
        port = env_int("FACEACCESS_PG_PORT", DEFAULT_PG_PORT)
        pg = EmbeddedPostgres(data / "pgdata", port=port, password=stored_secret("postgres-password", data),
                              log_path=data / "log" / "postgres.log")
        say(f"starting PostgreSQL 18 + pgvector on 127.0.0.1:{port} (data {pg.pgdata})")
        # We hold the data-dir lock, so a server still running on pgdata is an orphan of a killed run.
        os.environ["DATABASE_URL"] = pg.start(adopt_orphan=True)
        stack.callback(_stopping("PostgreSQL", pg.stop))
        supervised.append(Supervised("PostgreSQL", pg, f"127.0.0.1:{port}"))
    else:
        say("using the PostgreSQL server at DATABASE_URL")
    if not env_str("REDIS_URL"):
        port = env_int("FACEACCESS_REDIS_PORT", DEFAULT_REDIS_PORT)
        rd = EmbeddedRedis(data / "redis", port=port, password=stored_secret("redis-password", data),
                           log_path=data / "log" / "redis.log")
        say(f"starting Redis on 127.0.0.1:{port} (data {rd.directory})")
        os.environ["REDIS_URL"] = rd.start(adopt_orphan=True)
        stack.callback(_stopping("Redis", rd.stop))
        supervised.append(Supervised("Redis", rd, f"127.0.0.1:{port}"))
    else:
        say("using the Redis server at REDIS_URL")
    return supervised


def _stopping(name: str, stop):
    def _stop() -> None:
        say(f"stopping {name}")
        stop()

    return _stop


def _prepare_django() -> str | None:
    """migrate + collectstatic + an admin account; returns a one-time login line when one was made."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "faceaccess.settings")
    import django
    from django.core.management import call_command
    from django.db import connections

    django.setup()
    say("applying database migrations")
    call_command("migrate", interactive=False, verbosity=1)
    call_command("collectstatic", interactive=False, verbosity=0)
    try:
        return _ensure_admin()
    finally:
        connections.close_all()


def _ensure_admin() -> str | None:
    from django.contrib.auth import get_user_model

    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        return None
    username = env_str("FACEACCESS_ADMIN_USER", "admin")
    if users.objects.filter(username=username).exists():
        return "no superuser yet: create one with  .venv/bin/python manage.py createsuperuser"
    password = env_str("FACEACCESS_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    users.objects.create_superuser(username=username, email="", password=password)
    return (f"log in as  {username} / {password}   (shown once; change it with"
            f"  .venv/bin/python manage.py changepassword {username})")


def _spawn(name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    say(f"starting {name}: {' '.join(argv[1:])}")
    # Own session: the terminal's Ctrl-C reaches only us, and we stop the children in order.
    # Output goes to our terminal.
    return subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=die_with_parent(signal.SIGTERM))


def _stop_child(name: str, proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is not None:
        return
    say(f"stopping {name}")
    try:
        os.killpg(proc.pid, signal.SIGCONT)  # a stopped (SIGSTOP) process would not act on SIGTERM
    except ProcessLookupError:
        pass
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGQUIT, 10.0)):
        try:
            proc.send_signal(sig)
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


@dataclass
class Child:
    """A process the runner started (a worker, the web server), restarted when it exits or, for a worker,
    when the watchdog finds it stuck. Quick repeated failures (``MAX_QUICK_EXITS`` within ``QUICK_EXIT_WINDOW``
    seconds) stop the system instead: a child that cannot start would otherwise flap forever."""

    MAX_QUICK_EXITS = 5
    QUICK_EXIT_WINDOW = 120.0

    name: str
    argv: list[str]
    env: dict[str, str]
    grace: float
    proc: subprocess.Popen | None = None
    restarts: int = 0
    exits: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.proc = _spawn(self.name, self.argv, self.env)

    def stop(self) -> None:
        if self.proc is not None:
            _stop_child(self.name, self.proc, self.grace)

    def restart(self, why: str) -> None:
        say(f"{self.name}: {why}; restarting it")
        self.stop()
        self.start()
        self.restarts += 1
        say(f"{self.name} restarted ({self.restarts} restart{'s' * (self.restarts > 1)} since start-up)")

    def check(self) -> None:
        """Restart the child if it exited; raise ServiceError if it keeps exiting."""
        if self.proc is None or self.proc.poll() is None:
            return
        now = time.monotonic()
        self.exits = [t for t in self.exits if now - t < self.QUICK_EXIT_WINDOW] + [now]
        if len(self.exits) >= self.MAX_QUICK_EXITS:
            raise ServiceError(f"{self.name} exited {len(self.exits)} times within {self.QUICK_EXIT_WINDOW:.0f} s "
                               f"(last: {_exit_text(self.proc.returncode)})")
        self.restart(f"exited unexpectedly ({_exit_text(self.proc.returncode)})")


def _watchdog(child: Child, queue: str, node_prefix: str) -> Watchdog:
    """Restarts ``child`` when the oldest message of ``queue`` stops moving and the worker is not busy."""
    from django.conf import settings

    from . import redis_conn
    from .celery import app

    client = redis_conn.client()
    return Watchdog(
        watch=QueueWatch(queue, stall_after=settings.FACEACCESS_WORKER_STALL_SECONDS),
        node_prefix=node_prefix,
        restart=child.restart,
        oldest=lambda name: oldest_message(client, name),
        busy=lambda prefix: worker_busy(app, prefix, timeout=2.0),
    )


def _wait_http(url: str, children: dict[str, subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in children.items():
            if proc.poll() is not None:
                raise ServiceError(f"{name} exited with code {proc.returncode} during start-up")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise ServiceError(f"{url} did not answer within {timeout:.0f}s")


def _wait_worker(children: dict[str, subprocess.Popen], timeout: float = 300.0) -> None:
    """Round trip a task through the worker's pool process, so "running" means snapshots get processed
    (the pool process loads the engine on its own, in the background or on its first engine task)."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    from .celery import health_check

    say("waiting for the Celery worker to take tasks")
    result = health_check.apply_async(queue="gpu")  # the engine's worker, not the io one
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in children.items():
            if proc.poll() is not None:
                raise ServiceError(f"{name} exited with code {proc.returncode} during start-up")
        try:
            result.get(timeout=1.0)
            return
        except CeleryTimeout:
            continue
    say(f"warning: the worker has not run a task after {timeout:.0f}s; snapshots will wait in the queue")


def web_command(host: str, port: int, threads: int) -> list[str]:
    """The web process: waitress serving Django with read deadlines, connection limits (in all and per client
    address) and JSON errors of its own (`faceaccess.serve`; its limits are FACEACCESS_WEB_* settings)."""
    return [sys.executable, "-m", "faceaccess.serve", f"--listen={host}:{port}", f"--threads={threads}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=env_str("FACEACCESS_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=env_int("FACEACCESS_PORT", 8000))
    parser.add_argument("--threads", type=int, default=env_int("FACEACCESS_WEB_THREADS", 16),
                        help="web threads (a ?wait= request holds one for up to 10 s)")
    args = parser.parse_args(argv)

    data = data_dir()
    lock_fd = _lock_data_dir(data)
    # SIGINT too: a shell that starts us in the background (CI, `make run &`) leaves SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler of its own.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_stop)
    if port_is_open(args.host, args.port):
        raise SystemExit(f"{args.host}:{args.port} is already in use: stop what uses it or set FACEACCESS_PORT.")

    code = 0
    with ExitStack() as stack:
        try:
            servers = _start_services(stack, data)
            login = _prepare_django()
            from django.conf import settings  # configured by _prepare_django
            env = {**os.environ, "DJANGO_SETTINGS_MODULE": "faceaccess.settings", "PYTHONUNBUFFERED": "1"}
            # The camera bridge's token, shared by the web server and the bridge (kept under the data dir).
            if not env_str("FACEACCESS_BRIDGE_TOKEN"):
                env["FACEACCESS_BRIDGE_TOKEN"] = stored_secret("bridge-token", data)
            # The first snapshot after start should not pay for loading the models.
            env.setdefault("FACEACCESS_PRELOAD_PIPELINE", "1")
            # prefork with one child: the parent enforces the hard time limit by killing the child, and
            # a child that dies mid-task (OOM, segfault) gets its message re-queued
            # (task_reject_on_worker_lost); the child loads the engine once and keeps it.
            worker = Child("Celery worker", [
                sys.executable, "-m", "celery", "-A", "faceaccess", "worker", "-Q", settings.ENGINE_QUEUES,
                "-c", "1", "-P", "prefork", "-l", "INFO", "-n", "faceaccess@%h",
                # -B: Celery beat inside the worker (one machine): the sweeper and retention (settings).
                "-B", "-s", str(data / "celerybeat-schedule")], env, grace=20.0)
            # Everything that is not the engine (door webhooks, the sweeper, retention) on its own small
            # threaded worker, so a slow webhook receiver never holds the engine's process.
            io_worker = Child("Celery io worker", [
                sys.executable, "-m", "celery", "-A", "faceaccess", "worker", "-Q", "celery",
                "-c", "4", "-P", "threads", "-l", "INFO", "-n", "io@%h"], env, grace=20.0)
            web = Child("web server", web_command(args.host, args.port, args.threads), env, grace=10.0)
            children = [worker, io_worker, web]
            for child in children:
                child.start()
                stack.callback(child.stop)
            base = f"http://{args.host}:{args.port}"
            procs = {child.name: child.proc for child in children}
            _wait_http(f"{base}/healthz", procs, timeout=120)
            _wait_worker(procs)
            # Only now: a worker that is still loading its engine is not stuck.
            watchdogs = [_watchdog(worker, "gpu", "faceaccess@"), _watchdog(io_worker, "celery", "io@")]
            # The camera bridge (access/bridge/) once the web server answers: it reads its cameras from there and
            # waits quietly until one has a stream (README "Connect a camera").
            bridge = Child("camera bridge", [sys.executable, "manage.py", "run_bridge", "--server", base], env,
                           grace=10.0)
            bridge.start()
            stack.callback(bridge.stop)
            children.append(bridge)
            _banner(base, data, login)
            while True:
                for child in children:
                    child.check()
                for server in servers:
                    server.check()
                for watchdog in watchdogs:
                    watchdog.check()
                time.sleep(0.5)
        except (KeyboardInterrupt, Stop):
            print(flush=True)
            say("stopping (Ctrl-C)...")
        except ServiceError as exc:
            say(f"error: {exc}")
            code = 1
        finally:
            # A second Ctrl-C must not abandon half-stopped servers.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.close(lock_fd)
    say("stopped; data kept in " + str(data))
    return code


def _banner(base: str, data: Path, login: str | None) -> None:
    lines = [
        "",
        "FaceAccess is running.",
        f"  Console:             {base}/",
        f"  API docs (Swagger):  {base}/api/docs/",
        f"  OpenAPI schema:      {base}/api/schema/",
        f"  REST API:            {base}/api/v1/",
        f"  Django admin:        {base}/admin/",
        f"  Health:              {base}/healthz",
        f"  Data dir:            {data}",
        "  " + (login or "log in with your admin account (reset: .venv/bin/python manage.py changepassword <user>)"),
        "  API token:           .venv/bin/python manage.py create_token <user>",
        "Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
