"""A small JSON and multipart HTTP client for the scripts, benchmarks and tests that talk to a running FaceAccess.

Standard library only, and nothing here imports the rest of the project (no Django), so a script can use it
outside the service: ``scripts/smoke.py`` loads this file by its path and runs from any Python 3.11.

    body, content_type = multipart({"idempotency_key": "k1"}, {"image": ("door.jpg", photo)})
    answer = http("POST", f"{base}/api/v1/snapshots/?wait=10", body,
                  {"Authorization": f"Api-Key {key}", "Content-Type": content_type})
    if answer.status == 200:
        print(answer.data["decision"])

And the other end, for the tests and benchmarks of webhooks: :class:`RecordingReceiver` (a door controller that
records what it gets) and :class:`SilentReceiver` (one that never answers).
"""

from __future__ import annotations

import json
import mimetypes
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple


class Response(NamedTuple):
    """An answer. An error status (4xx, 5xx) is an answer too, never an exception."""

    status: int  # 0 when nothing answered: refused, reset, timed out
    headers: dict[str, str]
    data: Any  # the body decoded from JSON; {} when it is empty, not JSON, or nothing answered
    text: str  # the body as text; when nothing answered, why


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes] | tuple[str, bytes, str]]
              ) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type: ``fields`` (name -> value), then ``files`` (name ->
    (filename, bytes) or (filename, bytes, content type); the type is guessed from the filename when not given)."""
    boundary = uuid.uuid4().hex
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for name, (filename, data, *given) in files.items():
        content_type = given[0] if given else mimetypes.guess_type(filename)[0] or "application/octet-stream"
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n").encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 30.0) -> Response:
    """One request (a new connection each time). Error statuses are returned; a server that does not answer
    within ``timeout`` seconds (or refuses the connection) gives status 0."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, raw, got = exc.code, exc.read(), dict(exc.headers)
    except (urllib.error.URLError, OSError) as exc:
        return Response(0, {}, {}, str(exc))
    text = raw.decode(errors="replace")
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {}
    return Response(status, got, data, text)


class SilentReceiver:
    """A webhook receiver that accepts every connection and never answers (a dead lock controller), for the
    tests and benchmarks of webhook isolation; counts the connections open at once. ``url`` is where it listens."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/door"
        self.open = self.most_open = self.accepted = 0
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.open += 1
                self.accepted += 1
                self.most_open = max(self.most_open, self.open)
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn):
        try:
            while conn.recv(65536):  # read the request, answer nothing, until the client gives up
                pass
        except OSError:
            pass
        finally:
            conn.close()
            with self.lock:
                self.open -= 1

    def close(self):
        self.closed = True
        self.sock.close()


class Received(NamedTuple):
    """One request a :class:`RecordingReceiver` got."""

    at: float  # time.monotonic() when it arrived
    method: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class RecordingReceiver:
    """A webhook receiver (a door controller) on loopback that records every request it gets (``requests``)
    and answers ``status`` with ``headers`` and ``body``, for the tests and benchmarks of webhooks. GETs are
    recorded too: a followed redirect would arrive as one. ``url`` is where it listens."""

    def __init__(self, status: int = 204, headers: dict[str, str] | None = None, body: bytes = b""):
        self.status, self.requests = status, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append(Received(time.monotonic(), self.command,
                                               {k.lower(): v for k, v in self.headers.items()}, data))
                self.send_response(outer.status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}/door"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
