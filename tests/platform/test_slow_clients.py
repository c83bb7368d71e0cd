"""Slow and idle clients cannot starve the web process (issue 17, item 1), and the server's own refusals are JSON.

The web server runs as `make run` starts it (``faceaccess.runner.web_command``: ``python -m faceaccess.serve``),
with its default limits, on the test database and the session's Redis. The slow connections come from 127.0.0.2
(Linux routes all of 127/8 to the loopback interface), the console and /healthz from 127.0.0.1. Before issue 17,
plain waitress accepted 100 connections and then none: 150 slow ones from one address stopped every door and
/healthz, a request whose headers never finished stayed open as long as it sent a byte now and then, and a body
over waitress's limit got a plain-text 413.
"""

from __future__ import annotations

import json
import os
import select
import socket
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings

from faceaccess.embedded import free_port
from tests.conftest import database_url_for, web_process

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ATTACKER = "127.0.0.2"


@pytest.fixture(scope="module")
def web(django_db_setup, service_urls, tmp_path_factory):
    from django.db import connection

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEACCESS_WEB_")}  # the defaults
    env.update(DJANGO_SETTINGS_MODULE="faceaccess.settings", DATABASE_URL=database_url_for(connection.settings_dict),
               REDIS_URL=service_urls.redis_url, MEDIA_ROOT=str(service_urls.media_root), PYTHONUNBUFFERED="1")
    log_path = tmp_path_factory.mktemp("web") / "web.log"
    with web_process(env, port, log_path, threads=4):
        yield port, log_path


def get(url: str, timeout: float = 2.0) -> tuple[int, float]:
    """(status, seconds); status 0 when nothing answered within ``timeout``."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError:
        status = 0
    return status, time.monotonic() - started


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    return sock


def closed_with(sock: socket.socket, wait: float = 0.0) -> bytes | None:
    """What the server sent before closing ``sock`` (b"" for nothing), or None while it is still open."""
    if not select.select([sock], [], [], wait)[0]:
        return None
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except OSError:  # reset after (or instead of) an answer
        pass
    return answer


def status_and_json(answer: bytes) -> tuple[int, dict, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), json.loads(body), headers.get("content-type", "")


def test_slow_connections_from_one_address_leave_the_console_and_healthz_answering(web):
    port, log_path = web
    per_address = settings.FACEACCESS_WEB_CONNECTIONS_PER_ADDRESS
    socks = []
    try:
        for i in range(150):  # two in three send a header byte now and then and never finish; the rest nothing
            sock = connect(port, ATTACKER)
            if i % 3:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            socks.append(sock)
        time.sleep(1.0)
        open_socks, answers = [], []
        for sock in socks:
            answer = closed_with(sock)
            (open_socks if answer is None else answers).append(sock if answer is None else answer)
        for sock in open_socks[::2]:
            sock.sendall(b"a")

        for url in (f"http://127.0.0.1:{port}/healthz", f"http://127.0.0.1:{port}/login/"):
            status, took = get(url, timeout=5)
            assert status == 200 and took < 2.0, (url, status, took, log_path.read_text()[-2000:])

        assert len(open_socks) <= per_address  # the rest were refused at once ...
        assert len(answers) >= 150 - per_address
        refusals = [a for a in answers if a]
        assert refusals  # ... with an answer a real client can read
        status, body, content_type = status_and_json(refusals[0])
        assert (status, body["error"], content_type) == (503, "too_many_connections", "application/json")
        assert str(per_address) in body["detail"]
    finally:
        for sock in socks:
            sock.close()


def test_a_request_whose_headers_never_finish_is_closed_after_the_read_timeout(web):
    port, _ = web
    limit = settings.FACEACCESS_WEB_HEADER_TIMEOUT
    slow, idle = connect(port), connect(port)
    started = time.monotonic()
    try:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        closed: dict[str, tuple[float, bytes]] = {}
        while len(closed) < 2 and time.monotonic() - started < limit + 10:
            for name, sock in (("slow", slow), ("idle", idle)):
                if name not in closed and (answer := closed_with(sock, 0.2)) is not None:
                    closed[name] = (time.monotonic() - started, answer)
            if "slow" not in closed:
                try:
                    slow.sendall(b"a")  # a byte every ~0.5 s: never idle, never done
                except OSError:
                    pass
    finally:
        slow.close()
        idle.close()
    assert set(closed) == {"slow", "idle"}, closed
    for name, (seconds, _) in closed.items():
        assert limit - 0.5 <= seconds <= limit + 3.0, (name, seconds)
    status, body, content_type = status_and_json(closed["slow"][1])
    assert (status, body["error"], content_type) == (408, "request_timeout", "application/json")
    assert closed["idle"][1] == b""  # it asked nothing, so nothing is answered


def test_a_body_over_the_servers_limit_answers_json_413(web):
    port, _ = web
    limit = settings.FACEACCESS_MAX_UPLOAD_BYTES * 2 + (1 << 20)  # the server's own cap, above the app's
    sock = connect(port)
    try:
        sock.sendall(f"POST /api/v1/snapshots/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                     f"Content-Length: {limit + 1}\r\n\r\n".encode())
        answer = closed_with(sock, 5.0)
    finally:
        sock.close()
    assert answer, "no answer"
    status, body, content_type = status_and_json(answer)
    assert (status, body["error"], content_type) == (413, "too_large", "application/json")
    assert f"{limit:,}" in body["detail"]


def test_a_malformed_request_answers_json_400(web):
    port, _ = web
    sock = connect(port)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: lots\r\n\r\n")
        answer = closed_with(sock, 5.0)
    finally:
        sock.close()
    status, body, content_type = status_and_json(answer)
    assert (status, body["error"], content_type) == (400, "bad_request", "application/json")
