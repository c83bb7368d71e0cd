"""faceaccess/http_client.py, the HTTP client of the scripts, benchmarks and tests, against a real local server."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from faceaccess.http_client import http, multipart

REPO = Path(__file__).resolve().parents[2]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    """/echo: the request back as JSON (the multipart parts parsed); /missing: a JSON 404; /broken: a 500 in
    plain text; /empty: a 204; /slow: answers after a second."""

    def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        content_type = self.headers["Content-Type"]
        parts = []
        if content_type.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
            parts = [{"name": part.get_param("name", header="content-disposition"), "filename": part.get_filename(),
                      "type": part.get_content_type(), "sha256": sha256(part.get_payload(decode=True))}
                     for part in message.iter_parts()]
            for part, row in zip(message.iter_parts(), parts, strict=True):
                if row["filename"] is None:
                    row["value"] = part.get_payload(decode=True).decode()
        self.answer(200, json.dumps({"method": self.command, "parts": parts,
                                     "auth": self.headers.get("Authorization")}).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/missing":
            self.answer(404, b'{"error": "not_found"}', "application/json", {"Retry-After": "7"})
        elif self.path == "/broken":
            self.answer(500, b"<h1>Server Error</h1>", "text/html")
        elif self.path == "/empty":
            self.send_response(204)
            self.end_headers()
        elif self.path == "/slow":
            time.sleep(1.0)
            self.answer(200, b"{}", "application/json")
        else:
            self.answer(200, json.dumps({"path": self.path}).encode(), "application/json")

    def answer(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_multipart_post_arrives_as_sent(server):
    photo = bytes(range(256)) * 40 + b"\r\n--not-a-boundary\r\n"  # binary, with CRLFs and dashes inside
    body, content_type = multipart({"idempotency_key": "k-1", "captured_at": "2025-01-02T03:04:05Z"},
                                   {"image": ("door.jpg", photo), "other": ("scan.png", b"\x89PNG"),
                                    "raw": ("blob", b"xyz", "application/x-test")})
    assert content_type.startswith("multipart/form-data; boundary=")
    status, headers, data, _ = http("POST", f"{server}/echo", body,
                                    {"Content-Type": content_type, "Authorization": "Api-Key fa_x"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert data["method"] == "POST" and data["auth"] == "Api-Key fa_x"
    assert data["parts"] == [
        {"name": "idempotency_key", "filename": None, "type": "text/plain", "sha256": sha256(b"k-1"), "value": "k-1"},
        {"name": "captured_at", "filename": None, "type": "text/plain", "sha256": sha256(b"2025-01-02T03:04:05Z"),
         "value": "2025-01-02T03:04:05Z"},
        {"name": "image", "filename": "door.jpg", "type": "image/jpeg", "sha256": sha256(photo)},
        {"name": "other", "filename": "scan.png", "type": "image/png", "sha256": sha256(b"\x89PNG")},
        {"name": "raw", "filename": "blob", "type": "application/x-test", "sha256": sha256(b"xyz")},
    ]


def test_json_answers_and_error_statuses_are_returned_not_raised(server):
    answer = http("GET", f"{server}/here?x=1")
    assert (answer.status, answer.data) == (200, {"path": "/here?x=1"})
    assert json.loads(answer.text) == answer.data

    status, headers, data, text = http("GET", f"{server}/missing")
    assert (status, data, headers["Retry-After"]) == (404, {"error": "not_found"}, "7")

    status, _, data, text = http("GET", f"{server}/broken")
    assert (status, data, text) == (500, {}, "<h1>Server Error</h1>")  # not JSON: the text only

    status, _, data, text = http("GET", f"{server}/empty")
    assert (status, data, text) == (204, {}, "")


def test_no_answer_is_status_zero_with_the_reason(server):
    started = time.monotonic()
    status, headers, data, text = http("GET", f"{server}/slow", timeout=0.2)
    assert (status, headers, data) == (0, {}, {}) and "timed out" in text
    assert time.monotonic() - started < 1.0

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    status, _, data, text = http("GET", f"http://127.0.0.1:{port}/", timeout=5)
    assert (status, data) == (0, {}) and "refused" in text.lower()


def test_it_imports_without_django_or_celery():
    code = ("import importlib.util, sys; "
            "spec = importlib.util.spec_from_file_location('client', sys.argv[1]); "
            "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'faceaccess')))")
    done = subprocess.run([sys.executable, "-c", code, str(REPO / "faceaccess" / "http_client.py")],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
