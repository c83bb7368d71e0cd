"""Issue 9, defect 3: a frozen broker must not freeze the web server.

A real Redis (started here, embedded) is stopped with SIGSTOP while the real web server, started as `make run`
starts it (a subprocess on the test database), takes snapshots: each POST answers 503 with Retry-After and the
stored event's id well within its ?wait (it used to hang until the client gave up), the web threads stay free
for an admin's GET /events/, and once Redis runs again a retry with the same idempotency key queues the same
event.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from access.models import AccessEvent
from faceaccess import http_client
from faceaccess.embedded import EmbeddedRedis, free_port
from faceaccess.health import PRIORITY_LISTS
from tests.conftest import database_url_for, web_process

from .conftest import image_bytes

pytestmark = pytest.mark.django_db(transaction=True)  # the web server is another process: rows must commit

WAIT = 3.0  # the ?wait of the posts made while Redis is frozen
BROKER_TIMEOUT = 1.0
SLACK = 1.0  # request overhead allowed on a busy 2-core machine


@pytest.fixture
def redis_server():
    path = Path(tempfile.mkdtemp(prefix="faceaccess-frozen-"))
    rd = EmbeddedRedis(path / "redis", port=free_port(), password=secrets.token_urlsafe(12),
                       log_path=path / "redis.log", durable=False)
    rd.start()
    try:
        yield rd
    finally:
        if rd.proc is not None and rd.proc.poll() is None:
            os.kill(rd.proc.pid, signal.SIGCONT)
        rd.stop()
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def web_server(redis_server, tmp_path):
    """The web server as `make run` starts it, on the test database and the Redis above."""
    from django.db import connection

    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "faceaccess.settings",
           "DATABASE_URL": database_url_for(connection.settings_dict), "REDIS_URL": redis_server.url(),
           "MEDIA_ROOT": str(tmp_path / "media"), "FACEACCESS_BROKER_TIMEOUT": str(BROKER_TIMEOUT),
           "FACEACCESS_BROKER_RETRY_AFTER": "5"}
    with web_process(env, port, tmp_path / "web.log", threads=8) as base:
        yield base


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 30) -> tuple[int, dict, dict, float]:
    """faceaccess.http_client.http, timed: (status, JSON body, headers, seconds taken); status 0 when nothing
    answered within `timeout`."""
    started = time.monotonic()
    status, got, data, _ = http_client.http(method, url, body, headers, timeout)
    return status, data, got, time.monotonic() - started


def post_snapshot(base: str, key: str, idempotency_key: str, wait: float) -> tuple[int, dict, dict, float]:
    body, content_type = http_client.multipart({"idempotency_key": idempotency_key},
                                               {"image": ("door.png", image_bytes((7, 7, 7)))})
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": content_type}
    return http("POST", f"{base}/api/v1/snapshots/?wait={wait:g}", body, headers, timeout=wait + 20)


def test_a_frozen_broker_answers_503_within_wait_and_leaves_the_web_threads_free(
    web_server, redis_server, camera, users
):
    from knox.models import AuthToken

    admin = {"Authorization": f"Token {AuthToken.objects.create(users.owner)[1]}"}
    status, body, _, _ = post_snapshot(web_server, camera.key, "before", wait=0)
    assert status == 202, body  # Redis running: queued

    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(6) as pool:
            posts = [pool.submit(post_snapshot, web_server, camera.key, f"k{i}", WAIT) for i in range(6)]
            time.sleep(0.5)  # the posts are in the server now
            events = http("GET", f"{web_server}/api/v1/events/", headers=admin, timeout=20)
            results = [f.result() for f in posts]
        quick = post_snapshot(web_server, camera.key, "no-wait", wait=0)
        health = http("GET", f"{web_server}/healthz", timeout=20)
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)

    timings = sorted(round(r[3], 2) for r in results)
    for status, body, headers, seconds in results:
        assert status == 503, (status, body, timings)
        assert seconds <= WAIT + SLACK, timings  # ?wait bounds the whole request
        assert headers.get("Retry-After") == "5"
        assert body["error"] == "queue_unavailable" and isinstance(body["id"], int) and body["url"]
    assert quick[0] == 503 and quick[3] <= BROKER_TIMEOUT + SLACK + 0.5, quick
    assert events[0] == 200 and events[3] < 2.0, events[:1] + events[3:]  # a web thread was free at once
    assert health[0] == 503 and health[3] < BROKER_TIMEOUT + SLACK + 0.5, health

    # Every snapshot stays stored, marked as never queued.
    failed = AccessEvent.objects.filter(idempotency_key__startswith="k")
    assert failed.count() == 6
    assert set(failed.values_list("status", "enqueue_failed")) == {("failed", True)}
    assert {r[1]["id"] for r in results} == set(failed.values_list("pk", flat=True))

    # Redis runs again: the camera's retry queues the same event.
    first = next(r[1] for r in results if r[1]["id"] == failed.get(idempotency_key="k0").pk)
    status, body, headers, _ = post_snapshot(web_server, camera.key, "k0", wait=0)
    assert (status, body["id"], headers.get("Idempotent-Replayed")) == (202, first["id"], "true"), body
    assert AccessEvent.objects.get(pk=first["id"]).status == "pending"
    # Queued for a worker: "before" and the retried k0. A publish that timed out may still have reached Redis and
    # be delivered once it resumes; the worker drops a message whose event is not pending, so it does no harm.
    # (in the doors' queue at any priority: the retry waits behind "before", from the same camera)
    lists = ["gpu", *(f"gpu{suffix}" for suffix in PRIORITY_LISTS)]
    queued = {json.loads(m)["headers"]["argsrepr"] for name in lists
              for m in redis_server.client().lrange(name, 0, -1)}
    before = AccessEvent.objects.get(idempotency_key="before").pk
    assert {f"({before},)", f"({first['id']},)"} <= queued
    print(f"frozen Redis: {len(results)} concurrent posts with ?wait={WAIT:g} answered 503 in {timings} s; "
          f"?wait=0: {quick[3]:.2f} s; GET /events/ meanwhile: {events[3]:.2f} s; /healthz: {health[3]:.2f} s")
