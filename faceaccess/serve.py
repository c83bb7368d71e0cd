"""The web process: waitress serving Django, held against slow and idle clients (issue 17).

    python -m faceaccess.serve --listen=127.0.0.1:8000 --threads=16     # what `make run` and the image start

waitress already reads every request whole (line, headers and body; a body over 512 KB spooled to a temp file) in
its one I/O thread before a worker thread sees it, so a slow client costs a socket and a few KB, never a thread.
What it lacks, and what this module adds through waitress's own class hooks (``channel_class``,
``error_task_class``, ``maintenance``, ``handle_accept``), with the knobs in ``faceaccess/settings.py``:

- **deadlines**: a new connection must send its request's line and headers within
  ``FACEACCESS_WEB_HEADER_TIMEOUT`` (and so must every later request on it, counted from its first byte), then its
  body within ``FACEACCESS_WEB_BODY_TIMEOUT``; past either it gets a JSON 408 and is closed. waitress's own
  ``channel_timeout`` (here ``FACEACCESS_WEB_IDLE_TIMEOUT``, for keep-alive connections between requests) only
  closes a connection that sends nothing at all, so one header byte every few seconds kept it open forever;
- **a limit per client address** (``FACEACCESS_WEB_CONNECTIONS_PER_ADDRESS``): a connection over it gets a JSON
  503 with ``Retry-After`` and is closed at once;
- **a total far above real use** (``FACEACCESS_WEB_MAX_CONNECTIONS``; waitress's default of 100 is what 110 slow
  connections exhausted), served with poll() (waitress's default select() raises past descriptor 1,023), and
  the process's open-file limit raised to fit;
- **JSON for what waitress answers itself**, in the API's ``{"error", "detail"}`` shape: a body over the server's
  own limit (413 ``too_large``; the app's own, lower limit answers before it), a malformed request (400), headers
  over waitress's limit (431), and the 408 / 503 above.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

log = logging.getLogger("faceaccess.serve")

# waitress's own errors (waitress.utilities), by status: this API's code for each.
ERROR_CODES = {400: "bad_request", 413: "too_large", 431: "headers_too_large", 500: "server_error",
               501: "not_implemented"}
RETRY_AFTER_S = 5
FDS_BESIDES_CONNECTIONS = 256  # database and Redis connections, log and upload files, the threads' own


@dataclass(frozen=True)
class Limits:
    header_timeout: float  # a request's line + headers, from its first byte (from the accept, for the first)
    body_timeout: float  # its body, from the end of its headers
    idle_timeout: float  # a keep-alive connection between requests (waitress's channel_timeout)
    max_connections: int  # in all (waitress's connection_limit: over it, it stops accepting)
    per_address: int  # open connections of one client address; 0: no limit
    max_body: int  # bytes; over it waitress answers 413 (our JSON) before the app sees the request

    @classmethod
    def from_settings(cls) -> Limits:
        from django.conf import settings

        return cls(header_timeout=settings.FACEACCESS_WEB_HEADER_TIMEOUT,
                   body_timeout=settings.FACEACCESS_WEB_BODY_TIMEOUT,
                   idle_timeout=settings.FACEACCESS_WEB_IDLE_TIMEOUT,
                   max_connections=settings.FACEACCESS_WEB_MAX_CONNECTIONS,
                   per_address=settings.FACEACCESS_WEB_CONNECTIONS_PER_ADDRESS,
                   # The app refuses uploads over FACEACCESS_MAX_UPLOAD_BYTES itself (JSON 413); this cap sits
                   # well above it (a multipart body carries more than the photo) and only stops absurd bodies.
                   max_body=settings.FACEACCESS_MAX_UPLOAD_BYTES * 2 + (1 << 20))


def json_answer(status: str, code: str, detail: str, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, for the server's own refusals."""
    body = json.dumps({"error": code, "detail": detail}).encode()
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json", f"Content-Length: {len(body)}",
            "Connection: close", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class JsonErrorTask(ErrorTask):
    """waitress's answer to a request it refused itself (too large, malformed), as this API's JSON error."""

    def execute(self) -> None:
        error = self.request.error
        if error.code == 413:
            detail = (f"the request body is over this server's limit of "
                      f"{self.channel.server.adj.max_request_body_size:,} bytes")
        else:
            detail = str(error.body)
        body = json.dumps({"error": ERROR_CODES.get(error.code, "error"), "detail": detail}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


@dataclass
class Guard:
    """Open connections per client address, shared by every listening socket, and the log of refusals."""

    limits: Limits
    open: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refused: Counter = field(default_factory=Counter)  # since the last report, by address
    timed_out: Counter = field(default_factory=Counter)  # since the last report, by what was late
    next_report: float = 0.0

    def admit(self, address: str) -> bool:
        with self.lock:
            if self.limits.per_address and self.open[address] >= self.limits.per_address:
                self.refused[address] += 1
                return False
            self.open[address] += 1
            return True

    def release(self, address: str) -> None:
        with self.lock:
            self.open[address] -= 1
            if self.open[address] <= 0:
                del self.open[address]

    def report(self, now: float) -> None:
        """At most one log line a minute for what was refused or closed at a deadline."""
        if now < self.next_report or not (self.refused or self.timed_out):
            return
        self.next_report = now + 60.0
        with self.lock:
            refused, self.refused = self.refused, Counter()
        timed_out, self.timed_out = self.timed_out, Counter()
        if refused:
            worst = ", ".join(f"{address} ({n})" for address, n in refused.most_common(5))
            log.warning("refused %d connections over the limit of %d per address (most: %s)",
                        sum(refused.values()), self.limits.per_address, worst)
        if timed_out:
            log.warning("closed %d connections at a read deadline (%s)", sum(timed_out.values()),
                        ", ".join(f"{what}: {n}" for what, n in sorted(timed_out.items())))


class Channel(HTTPChannel):
    """waitress's connection, which also knows since when it has been reading its current request."""

    error_task_class = JsonErrorTask

    def __init__(self, server: Server, sock, addr, adj, map=None) -> None:  # noqa: A002 (waitress's name)
        self.counted_address: str | None = None
        self.got_bytes = False
        self.reading = None  # the request being read, once its first bytes have come
        self.reading_since = self.body_since = time.monotonic()
        super().__init__(server, sock, addr, adj, map=map)

    def received(self, data: bytes) -> bool:
        done = super().received(data)
        now = time.monotonic()
        self.got_bytes = self.got_bytes or bool(data)
        request = self.request  # None: every byte so far belonged to complete requests
        if request is not self.reading:
            self.reading, self.reading_since, self.body_since = request, now, now
        if request is not None and not request.headers_finished:
            self.body_since = now
        return done

    def late(self, now: float, limits: Limits) -> str | None:
        """What this connection has not sent in time, or None."""
        if self.requests or self.will_close or self.close_when_flushed:
            return None  # being answered (a ?wait request holds its connection), or closing anyway
        if not self.got_bytes:
            return "request" if now - self.reading_since > limits.header_timeout else None
        if self.reading is None:
            return None  # between requests: the idle timeout's
        if not self.reading.headers_finished:
            return "headers" if now - self.reading_since > limits.header_timeout else None
        return "body" if now - self.body_since > limits.body_timeout else None

    def time_out(self, what: str, limits: Limits) -> None:
        if what == "request":
            self.will_close = True  # nothing was asked: nothing to answer
            return
        seconds = limits.header_timeout if what == "headers" else limits.body_timeout
        answer = json_answer("408 Request Timeout", "request_timeout",
                             f"the request's {what} did not arrive within {seconds:g} s")
        with self.outbuf_lock:
            self.outbufs[-1].append(answer)
            self.total_outbufs_len += len(answer)
        self.close_when_flushed = True  # sent by the I/O loop, then closed (or closed when idle, if never read)

    def del_channel(self, map=None) -> None:  # noqa: A002
        super().del_channel(map)
        if self.counted_address is not None:
            self.server.guard.release(self.counted_address)
            self.counted_address = None


class Server(TcpWSGIServer):
    """One listening socket of waitress, with the per-address limit at accept and the deadlines in its
    once-a-second maintenance (``cleanup_interval``)."""

    channel_class = Channel

    def __init__(self, application, map, dispatcher, adj, sockinfo, guard: Guard) -> None:  # noqa: A002
        self.guard = guard
        super().__init__(application, map, True, None, dispatcher=dispatcher, adj=adj, sockinfo=sockinfo)

    def handle_accept(self) -> None:
        try:
            pair = self.accept()
            if pair is None:
                return
            conn, addr = pair
            self.set_socket_options(conn)
        except OSError:  # the peer left before we got to it (as waitress itself does)
            return
        addr = self.fix_addr(addr)
        address = str(addr[0])
        if not self.guard.admit(address):
            refuse(conn, self.guard.limits.per_address)
            return
        try:
            channel = self.channel_class(self, conn, addr, self.adj, map=self._map)
        except BaseException:
            self.guard.release(address)
            conn.close()
            raise
        channel.counted_address = address

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # waitress: closes connections idle longer than channel_timeout
        limits, mono = self.guard.limits, time.monotonic()
        for channel in list(self.active_channels.values()):
            what = channel.late(mono, limits)
            if what:
                channel.time_out(what, limits)
                self.guard.timed_out[what] += 1
        self.guard.report(mono)


def refuse(conn, per_address: int) -> None:
    """A connection over the per-address limit: a 503 it can read if it is a real client, then closed."""
    answer = json_answer("503 Service Unavailable", "too_many_connections",
                         f"this address already has {per_address} connections open, the most one client may "
                         f"have; retry after {RETRY_AFTER_S} s", (("Retry-After", str(RETRY_AFTER_S)),))
    try:
        conn.setblocking(False)
        conn.send(answer)  # a new socket's send buffer takes it whole
    except OSError:
        pass
    conn.close()


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's soft open-file limit towards ``wanted``; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else wanted


def build(application, listen: str, threads: int, limits: Limits, ident: str = "faceaccess"
          ) -> tuple[list[Server], dict, Adjustments]:
    """The listening sockets for ``listen`` (one per address it resolves to), sharing one map, one thread pool
    and one per-address count; run them with ``serve_forever``."""
    fds = raise_open_files_limit(limits.max_connections + FDS_BESIDES_CONNECTIONS + threads)
    max_connections = min(limits.max_connections, fds - FDS_BESIDES_CONNECTIONS - threads)
    if max_connections < limits.max_connections:
        log.warning("open-file limit %d: serving at most %d connections, not %d (raise `ulimit -n`)",
                    fds, max_connections, limits.max_connections)
    adj = Adjustments(listen=listen, threads=threads, ident=ident, max_request_body_size=limits.max_body,
                      connection_limit=max(16, max_connections), channel_timeout=limits.idle_timeout,
                      cleanup_interval=1, asyncore_use_poll=True)
    guard = Guard(limits)
    socket_map: dict = {}
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(threads)
    servers = [Server(application, socket_map, dispatcher, adj, sockinfo, guard) for sockinfo in adj.listen]
    return servers, socket_map, adj


def serve_forever(servers: list[Server], socket_map: dict, adj: Adjustments) -> None:
    for server in servers:
        host = str(server.effective_host)
        log.info("serving on http://%s:%s", f"[{host}]" if ":" in host else host, server.effective_port)
    limits = servers[0].guard.limits
    log.info("limits: headers %gs, body %gs, idle %gs, %d connections, %s per address, bodies up to %d bytes",
             limits.header_timeout, limits.body_timeout, limits.idle_timeout, adj.connection_limit,
             limits.per_address or "no limit", limits.max_body)
    try:
        wasyncore.loop(timeout=adj.asyncore_loop_timeout, map=socket_map, use_poll=True)
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        servers[0].task_dispatcher.shutdown()
        wasyncore.close_all(socket_map)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8000", help="host:port (default %(default)s)")
    parser.add_argument("--threads", type=int, default=16, help="threads running the app (default %(default)s)")
    args = parser.parse_args(argv)
    from .wsgi import application  # sets up Django (and its logging) from faceaccess.settings

    servers, socket_map, adj = build(application, args.listen, args.threads, Limits.from_settings())
    serve_forever(servers, socket_map, adj)


if __name__ == "__main__":
    main()
