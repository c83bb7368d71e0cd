"""Issue 17, item 4: where webhooks may go, and one receiver that never answers delays only itself.

- SSRF: a webhook URL to loopback, private, link-local, metadata or unspecified addresses, with credentials, or
  not http(s), is refused by the API and the console (the model field's validator), and again at delivery, after
  resolving the name then (DNS may have changed), connecting to the address it checked; FACEACCESS_WEBHOOK_ALLOW
  lets a LAN controller through;
- isolation: with a receiver that accepts connections and never answers, another camera's deliveries through the
  real threaded I/O worker (``-Q ... -P threads -c 4``, as `make run` starts it) arrive within 1 s (p95).
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from access.models import AccessEvent, WebhookDelivery
from faceaccess import outbound
from faceaccess.http_client import RecordingReceiver, SilentReceiver

from .conftest import make_camera

# The 11 accepted internal URLs and more of their kind.
INTERNAL = [
    "http://127.0.0.1:54339/",  # the embedded PostgreSQL
    "http://127.0.0.1:63809/",  # the embedded Redis
    "http://localhost:8000/api/v1/",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",  # cloud metadata
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[::1]:8000/",
    "http://0.0.0.0:8000/",
    "http://user:pw@93.184.215.14/door",  # credentials in the URL
    "ftp://93.184.215.14/door",
    "gopher://93.184.215.14:70/_",
    "http://10.0.0.5/door",
    "http://172.16.4.4/door",
    "http://192.168.1.10/door",
    "http://100.64.0.1/door",  # carrier-grade NAT
    "http://[fe80::1]/door",
    "http://[fd00:ec2::254]/latest/meta-data/",  # AWS' IPv6 metadata
    "http://[::ffff:127.0.0.1]:6379/",  # IPv4-mapped loopback
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 form of 169.254.169.254
    "http://127.1:5432/",  # short and decimal forms resolve to loopback
    "http://2130706433/",
    "http://224.0.0.1/",
]
PUBLIC = ["https://93.184.215.14/door", "http://93.184.215.14:8080/hook?door=1", "https://[2606:4700::1111]/x"]


@pytest.fixture
def admin_api(users):
    from .conftest import token_client

    return token_client(users.owner)


@pytest.mark.django_db
def test_internal_urls_are_refused_by_the_api_and_the_console(camera, admin_api, staff):
    from django.test import Client

    url = f"/api/v1/cameras/{camera.camera.pk}/"
    console = Client()
    console.force_login(staff.admin)
    form = {"name": "door", "active": "on", "debounce_seconds": "10"}
    accepted = []
    for target in INTERNAL:
        answer = admin_api.patch(url, {"webhook_url": target}, format="json")
        if answer.status_code != 400:
            accepted.append(("api", target))
        page = console.post(f"/cameras/{camera.camera.pk}/edit/", {**form, "webhook_url": target})
        if page.status_code != 200 or "errorlist" not in page.content.decode():
            accepted.append(("console", target))
    assert accepted == []
    camera.camera.refresh_from_db()
    assert camera.camera.webhook_url == ""
    answer = admin_api.patch(url, {"webhook_url": "http://169.254.169.254/latest/"}, format="json").json()
    assert answer["error"] == "invalid" and "link-local" in answer["detail"] and "FACEACCESS_WEBHOOK_ALLOW" in answer[
        "detail"]
    for target in PUBLIC:
        assert admin_api.patch(url, {"webhook_url": target}, format="json").status_code == 200, target


def test_address_rules():
    refused = ["127.0.0.1", "10.1.2.3", "169.254.169.254", "0.0.0.0", "::1", "fe80::1%eth0", "fc00::1",
               "::ffff:10.0.0.1", "2002:a00:1::1", "64:ff9b::7f00:1", "255.255.255.255", "198.18.0.1", "fec0::1"]
    assert [a for a in refused if outbound.address_allowed(a)] == []
    assert all(outbound.address_allowed(a) for a in ("93.184.215.14", "2606:4700::1111", "8.8.8.8"))
    with pytest.raises(outbound.Refused):
        outbound.parse("http://door.example/a b")


def test_the_allow_list_lets_a_lan_controller_through(settings, monkeypatch):
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host in ("door.lan", "gate.site.lan"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.10.20", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    settings.FACEACCESS_WEBHOOK_ALLOW = ["192.168.10.0/24", "127.0.0.1"]
    outbound.validate_url("http://192.168.10.20/door")
    outbound.validate_url("http://door.lan:8080/door")  # resolves into the allowed network
    outbound.validate_url("http://127.0.0.1:9000/door")
    for target in ("http://192.168.11.20/door", "http://127.0.0.2/", "http://169.254.169.254/"):
        with pytest.raises(ValidationError):
            outbound.validate_url(target)
    settings.FACEACCESS_WEBHOOK_ALLOW = [".site.lan"]  # by name: every name under site.lan
    outbound.validate_url("http://gate.site.lan/door")
    with pytest.raises(ValidationError):
        outbound.validate_url("http://door.lan/door")


# ---------------------------------------------------------------- at delivery time -----------------------------

@pytest.fixture
def recorder():
    r = RecordingReceiver()
    yield r
    r.close()


def decided_event(camera) -> AccessEvent:
    return AccessEvent.objects.create(camera=camera, site=camera.site, received_at=timezone.now(),
                                      processed_at=timezone.now(), status="done", decision="granted")


@pytest.mark.django_db
def test_the_name_is_resolved_again_at_delivery_and_that_address_is_the_one_used(site, recorder, settings,
                                                                                 monkeypatch):
    """DNS rebinding: the name resolved to a public address when the URL was saved, and to loopback later."""
    from access.outputs import webhooks

    answers = {"rebind.test": "93.184.215.14"}
    lookups = []
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host in answers:
            lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    camera = make_camera(site).camera
    camera.webhook_url = f"http://rebind.test:{recorder.port}/door"
    camera.full_clean()  # accepted: a public address now
    camera.save()
    answers["rebind.test"] = "127.0.0.1"  # ... and loopback at delivery time
    event = decided_event(camera)
    assert webhooks.deliver(event.pk, 1) == "given up"  # not retried: no retry makes it allowed
    assert recorder.requests == []
    (row,) = WebhookDelivery.objects.filter(event=event)
    assert (row.delivered, row.status_code, row.error) == (False, None, "address not allowed")

    # A name the installation allows: posted to the address it resolved to, once, with the name as Host.
    settings.FACEACCESS_WEBHOOK_ALLOW = ["rebind.test"]
    lookups.clear()
    assert webhooks.deliver(event.pk, 2) == "delivered"
    assert lookups == ["rebind.test"]  # resolved once, and the connection went to that address
    (got,) = recorder.requests
    host = got.headers["host"]
    assert host == f"rebind.test:{recorder.port}"


@pytest.mark.django_db
def test_a_stored_internal_url_is_refused_at_delivery(site, recorder):
    """A row saved before this check (or around the validator) still never reaches loopback."""
    from access.outputs import webhooks

    camera = make_camera(site).camera
    camera.webhook_url = f"http://user:secret@127.0.0.1:{recorder.port}/door"
    camera.save()
    event = decided_event(camera)
    assert webhooks.deliver(event.pk, 1) == "given up"
    camera.webhook_url = f"http://127.0.0.1:{recorder.port}/door"
    camera.save()
    assert webhooks.deliver(event.pk, 2) == "given up"
    assert recorder.requests == []
    rows = list(WebhookDelivery.objects.filter(event=event).values_list("error", "url"))
    assert rows == [("invalid URL", f"http://127.0.0.1:{recorder.port}/door"),  # kept without the password
                    ("address not allowed", f"http://127.0.0.1:{recorder.port}/door")]


# ---------------------------------------------------------------- one silent receiver ----------------------------

def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@pytest.mark.django_db(transaction=True)
def test_a_silent_receiver_delays_only_itself(site, recorder, tmp_path):
    from django.conf import settings
    from django.db import connection

    from access import tasks
    from faceaccess.celery import app
    from faceaccess.redis_conn import client as redis_client
    from tests.conftest import REPO_ROOT, _stop_worker, database_url_for

    silent = SilentReceiver()
    queue = f"webhooks-{uuid.uuid4().hex[:8]}"  # this test's own queue: no other worker takes its deliveries
    hostname = f"io-{queue}@localhost"
    env = {**os.environ, "DATABASE_URL": database_url_for(connection.settings_dict),
           "REDIS_URL": settings.CELERY_BROKER_URL, "DJANGO_SETTINGS_MODULE": "faceaccess.settings",
           "FACEACCESS_WEBHOOK_ALLOW": "127.0.0.1/32", "FACEACCESS_WEBHOOK_RETRIES": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    log = tmp_path / "io-worker.log"
    with open(log, "ab") as out:  # `make run`'s I/O worker, on this test's queue
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "faceaccess", "worker", "-Q", queue, "-c",
                                   "4", "-P", "threads", "-n", hostname, "--without-gossip", "--without-mingle",
                                   "-l", "INFO"], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not any(hostname in r for r in app.control.ping(destination=[hostname], timeout=1.0)):
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        bad = make_camera(site, "silent door").camera
        bad.webhook_url = f"http://127.0.0.1:{silent.port}/door"
        good = make_camera(site, "good door").camera
        good.webhook_url = f"http://127.0.0.1:{recorder.port}/door"
        for camera in (bad, good):
            camera.save()

        def send(camera) -> int:
            event = decided_event(camera)
            tasks.deliver_webhook.apply_async((event.pk,), queue=queue)
            return event.pk

        for _ in range(8):  # a burst to the silent receiver first: more than the worker's 4 threads
            send(bad)
        sent = {}
        for i in range(20):
            sent[send(good)] = time.monotonic()
            if i % 2:
                send(bad)
            time.sleep(0.15)
        deadline = time.monotonic() + 30
        while len(recorder.requests) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.1)
        arrived = {json.loads(r.body)["event"]: r.at for r in recorder.requests}
        assert set(arrived) == set(sent), log.read_text()[-3000:]
        lags = [arrived[pk] - sent[pk] for pk in sent]
        assert p95(lags) < 1.0, sorted(lags)
        assert silent.accepted >= 2 and silent.most_open <= 2  # FACEACCESS_WEBHOOK_PER_RECEIVER (2)
    finally:
        _stop_worker(worker)
        silent.close()
        redis = redis_client()
        redis.delete(queue, *redis.keys("faceaccess:webhook-slots:*"))
