"""The embedded PostgreSQL 18 + pgvector and Redis servers: the session's own (from the root
conftest) and fresh ones for start / restart / orphan handling."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import tempfile
from pathlib import Path

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from faceaccess.embedded import EmbeddedPostgres, EmbeddedRedis, ServiceError, free_port
from faceaccess.embedded.process import pid_alive


@pytest.fixture
def scratch_dir():
    # Not pytest's tmp_path: under root the unprivileged PostgreSQL account must be able to reach it.
    path = Path(tempfile.mkdtemp(prefix="faceaccess-embedded-"))
    path.chmod(0o755)
    yield path
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def test_session_postgres_has_pgvector(service_urls):
    with psycopg.connect(service_urls.database_url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0]
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        distance = conn.execute("SELECT '[0,0,0]'::vector <-> '[3,4,0]'::vector").fetchone()[0]
        extversion = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
    if service_urls.embedded_database:
        assert int(version) // 10000 == 18
    assert distance == pytest.approx(5.0)
    assert tuple(int(x) for x in extversion.split(".")[:2]) >= (0, 8)


def test_session_redis_needs_its_password(service_urls):
    client = redis.Redis.from_url(service_urls.redis_url)
    assert client.ping() is True
    url = redis.connection.parse_url(service_urls.redis_url)
    if url.get("password"):
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(host=url["host"], port=url["port"], retry=Retry(NoBackoff(), 0)).ping()


def test_postgres_persists_across_restart_and_listens_on_loopback_only(scratch_dir):
    port = free_port()
    # durable=False only skips fsync: a clean stop still checkpoints everything (make run's durable
    # servers are exercised by test_platform_runner).
    pg = EmbeddedPostgres(scratch_dir / "pgdata", port=port, password="pw-1", log_path=scratch_dir / "pg.log",
                          durable=False)
    url = pg.start()
    try:
        assert url == f"postgresql://faceaccess:pw-1@127.0.0.1:{port}/faceaccess"
        with pg.connect(autocommit=True) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
            assert conn.execute("SHOW unix_socket_directories").fetchone()[0] == ""
            conn.execute("CREATE EXTENSION vector")
            conn.execute("CREATE TABLE kept (v vector(3))")
            conn.execute("INSERT INTO kept VALUES ('[1,2,2]')")
        with pytest.raises(psycopg.OperationalError):  # password auth, not trust
            psycopg.connect(host="127.0.0.1", port=port, user="faceaccess", password="wrong", dbname="faceaccess")
        if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as an unprivileged account
            assert (scratch_dir / "pgdata").stat().st_uid == pwd.getpwnam("embedded_postgres").pw_uid
        server_pid = pg.proc.pid
    finally:
        pg.stop()
    assert not pid_alive(server_pid)
    with socket.socket() as sock:  # nothing listens on the port any more (TIME_WAIT leftovers aside)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))

    again = EmbeddedPostgres(scratch_dir / "pgdata", port=port, password="pw-1", log_path=scratch_dir / "pg.log",
                             durable=False)
    again.start()  # no second initdb: the cluster and its rows are still there
    try:
        with again.connect() as conn:
            assert conn.execute("SELECT v <-> '[0,0,0]' FROM kept").fetchone()[0] == pytest.approx(3.0)
    finally:
        again.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL to another account")
def test_root_data_dir_under_a_private_folder(scratch_dir):
    """As root, PostgreSQL runs as `embedded_postgres`, which must be able to reach pgdata even when
    it lies under a 0700 folder (a checkout in /root): the folder gets search (x) permission only."""
    private = scratch_dir / "private"
    private.mkdir(mode=0o700)
    pg = EmbeddedPostgres(private / "var" / "pgdata", port=free_port(), password="pw", durable=False)
    pg.start()
    try:
        with pg.connect() as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("faceaccess",)
    finally:
        pg.stop()
    assert stat_mode(private) == 0o701


def test_orphaned_postgres_is_refused_or_adopted(scratch_dir):
    first = EmbeddedPostgres(scratch_dir / "pgdata", port=free_port(), password="pw", durable=False)
    first.start()
    orphan_pid = first.proc.pid
    second = EmbeddedPostgres(scratch_dir / "pgdata", port=free_port(), password="pw", durable=False)
    try:
        with pytest.raises(ServiceError, match="already running"):
            second.start()
        second.start(adopt_orphan=True)  # stops the leftover server, then starts its own
        first.proc.wait(30)
        assert not pid_alive(orphan_pid)
        with second.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        second.stop()
        first.stop()


def test_redis_persists_across_restart(scratch_dir):
    port = free_port()
    rd = EmbeddedRedis(scratch_dir / "redis", port=port, password="secret", log_path=scratch_dir / "redis.log")
    assert rd.start() == f"redis://:secret@127.0.0.1:{port}/0"
    try:
        rd.client().set("kept", "yes")
        assert stat_mode(scratch_dir / "redis" / "redis.conf") == 0o600  # it holds the password
    finally:
        rd.stop()
    rd2 = EmbeddedRedis(scratch_dir / "redis", port=port, password="secret", log_path=scratch_dir / "redis.log")
    rd2.start()
    try:
        assert rd2.client().get("kept") == b"yes"
    finally:
        rd2.stop()


def test_start_failure_reports_the_log(scratch_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rd = EmbeddedRedis(scratch_dir / "redis", port=port, password="pw", log_path=scratch_dir / "redis.log",
                           durable=False)
        with pytest.raises(ServiceError, match="(?s)redis-server exited.*Address already in use"):
            rd.start(timeout=20)


def test_servers_die_with_their_parent(scratch_dir):
    """A SIGKILLed `make run` must not leave servers behind (PR_SET_PDEATHSIG)."""
    import subprocess
    import sys
    import time

    code = (
        "import sys, time; from pathlib import Path; from faceaccess.embedded import EmbeddedRedis;"
        f"r = EmbeddedRedis(Path({str(scratch_dir)!r}) / 'r', port={free_port()}, password='p', durable=False);"
        "r.start(); print(r.proc.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    child_pid = int(parent.stdout.readline())
    assert pid_alive(child_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while pid_alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(child_pid)


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
