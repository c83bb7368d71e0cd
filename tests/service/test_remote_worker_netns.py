"""Two hosts on this machine (issue 19): the web service, PostgreSQL and Redis on one, the worker on another.

The test makes a network namespace joined to this one by a veth pair (``bench/two_hosts.py``); this namespace is the
web host, the new one is the worker host. The worker runs inside it with its own empty data dir and the web host's
folders hidden under an empty tmpfs (its own mount namespace), so it shares no folder with the web service and
reaches it, PostgreSQL and Redis only through the veth (the embedded servers listen on loopback, so relays on the
veth address forward to them, as a LAN address would). An enrollment photo and a door snapshot posted to the web
host are decided by the remote worker; killing it in the middle of a task loses nothing. Skipped, with the reason,
where network namespaces cannot be made (not root, no iproute2).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import pytest

from tests.conftest import database_url_for, web_process

from .conftest import engine_missing_reason
from .scale_out import (
    OWN_REDIS_DB,
    REPO_ROOT,
    VISIBILITY_S,
    Api,
    decided_by_a_worker_without_the_web_media,
    nothing_lost_when_a_worker_dies_mid_task,
    start_worker,
    with_host,
    worker_env,
)

sys.path.insert(0, str(REPO_ROOT / "bench"))
import two_hosts  # noqa: E402

MISSING = engine_missing_reason() or two_hosts.unavailable()
pytestmark = [
    pytest.mark.skipif(MISSING is not None, reason=MISSING or ""),
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.weights,
]


@pytest.fixture
def hosts(users, tmp_path):
    """The web host (this namespace: web service on the veth address; PostgreSQL and Redis relayed there) and how
    to start a worker on the other host."""
    from django.conf import settings
    from django.db import connection
    from knox.models import AuthToken

    from faceaccess.embedded import free_port

    web_dir = tmp_path / "web-host"  # everything of the web host's on disk: hidden from the worker
    web_dir.mkdir()
    key = secrets.token_urlsafe(32)
    relays = []
    with two_hosts.Namespace() as ns:
        try:
            db_url, relay = two_hosts.relayed_url(database_url_for(connection.settings_dict), ns.host_ip)
            relays.append(relay)
            redis_url, relay = two_hosts.relayed_url(with_host(settings.CELERY_BROKER_URL, db=OWN_REDIS_DB),
                                                     ns.host_ip)
            relays.append(relay)
            env = {
                **os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url,
                "MEDIA_ROOT": str(web_dir / "media"), "FACEACCESS_DATA_DIR": str(web_dir / "data"),
                "FACEACCESS_WORKER_KEY": key, "FACEACCESS_SNAPSHOT_RATE": "6000/min",
                "ALLOWED_HOSTS": f"127.0.0.1,localhost,{ns.host_ip}",
            }
            _, token = AuthToken.objects.create(users.owner)
            hidden = [web_dir, Path(os.environ["MEDIA_ROOT"]).parent]  # also the test session's own data
            with web_process(env, free_port(), tmp_path / "web.log", threads=8, host=ns.host_ip) as base:

                def start(name: str, **extra: str):
                    worker_dir = tmp_path / f"{name}-host"
                    worker = start_worker(
                        worker_env(db_url, redis_url, base, key, worker_dir / "data",
                                   FACEACCESS_VISIBILITY_TIMEOUT=str(VISIBILITY_S), **extra),
                        tmp_path / f"{name}.log", name, wrap=ns.wrap(hide=hidden))
                    _assert_on_the_other_host(worker.proc.pid, hidden)
                    return worker

                yield Api(base, token), start, web_dir / "media"
        finally:
            for relay in relays:
                relay.close()


def _assert_on_the_other_host(pid: int, hidden: list[Path]) -> None:
    """The worker runs in another network namespace, and sees the web host's folders as empty tmpfs mounts."""
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    mounts = Path(f"/proc/{pid}/mountinfo").read_text()
    for path in hidden:
        assert any(line.split()[4] == str(path) and "faceaccess-hidden" in line for line in mounts.splitlines()), (
            path, mounts[-2000:])


def test_the_remote_host_decides_a_snapshot_and_an_enrollment_photo(hosts):
    api, start, media = hosts
    decided_by_a_worker_without_the_web_media(api, start, media)


def test_the_remote_host_killed_mid_task_loses_nothing(hosts):
    api, start, _ = hosts
    nothing_lost_when_a_worker_dies_mid_task(api, start)
