"""Where this server may send HTTP requests of its own (the door webhooks), and one POST to an address it checked.

A webhook URL is an admin's input, and the worker posts to it from inside the installation: unchecked, it reaches
the installation's own PostgreSQL and Redis on loopback, a cloud's metadata service (169.254.169.254,
``metadata.google.internal``) or anything else on the LAN. So a target must be ``http``/``https`` without a user
name or password, and its host must resolve only to public addresses (not loopback, private, link-local, shared,
reserved, multicast or unspecified ones, nor an IPv6 form of one), unless ``FACEACCESS_WEBHOOK_ALLOW`` lists it:
CIDRs (``192.168.10.0/24``, ``10.1.2.3``) or host names (``door.lan``; ``.lan`` for every name under it), for an
installation whose lock controller is on its LAN.

It is checked twice: when the URL is saved (:func:`validate_url`, the model field's validator, so the API, the
console and the admin refuse it with the reason) and at every delivery (:func:`post` resolves the name again), since
a name may resolve elsewhere later (DNS rebinding). The delivery then connects to the very address it checked, with
the URL's host in the Host header and in TLS (SNI and the certificate check), and never follows a redirect.

What a failed delivery records is one of the fixed words below (:class:`Failed` ``.reason``), never the receiver's
answer or an exception's text. Standard library only: ``ipaddress``, ``socket``, ``ssl``.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

# What a failed attempt records (a fixed vocabulary: shown to everyone who reads the access log).
NOT_ALLOWED = "address not allowed"
BAD_URL = "invalid URL"
NOT_RESOLVED = "name not resolved"
TIMEOUT = "timeout"
REFUSED = "connection refused"
RESET = "connection reset"
UNREACHABLE = "connection failed"
TLS = "TLS error"
BAD_RESPONSE = "bad response"
REDIRECT = "redirect refused"

# Names that are never a door controller, whatever they resolve to (cloud metadata services, this machine).
BLOCKED_NAMES = frozenset({"localhost", "localhost.localdomain", "metadata", "metadata.google.internal",
                           "metadata.goog", "instance-data", "instance-data.ec2.internal"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
MAX_HEAD = 16 * 1024  # the most of an answer's status line and headers that is read


class Refused(Exception):
    """The URL or the address it resolves to may not be posted to: ``reason`` for the delivery row, ``detail`` for
    the admin who typed it."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class Failed(Exception):
    """An attempt that got no usable answer; ``reason`` is one of the fixed words above."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # ASCII (IDNA), lower case, IPv6 without brackets
    port: int
    path: str  # path and query, as sent in the request line

    @property
    def receiver(self) -> str:
        """``host:port``: what the per-receiver limits count."""
        return f"{self.host}:{self.port}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == (443 if self.scheme == "https" else 80) else f"{host}:{self.port}"


@dataclass(frozen=True)
class Answer:
    status: int
    location: str  # the Location header of a redirect, "" otherwise


# ---------------------------------------------------------------- the rules --------------------------------------

def parse(url: str) -> Target:
    """The URL's target, or :class:`Refused` for a scheme other than http(s), a user name or password, no host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise Refused(BAD_URL, "not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise Refused(BAD_URL, "only http:// and https:// URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise Refused(BAD_URL, "a user name or password in the URL is not allowed (the request is signed)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise Refused(BAD_URL, "the URL has no host")
    try:
        host = host.encode("idna").decode("ascii").lower() if not _literal(host) else host.lower()
    except UnicodeError:
        raise Refused(BAD_URL, "the host is not a valid name") from None
    scheme = parts.scheme.lower()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(c.isspace() or not c.isprintable() or ord(c) > 126 for c in path):
        raise Refused(BAD_URL, "the path has spaces or characters that are not URL-encoded")
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@functools.lru_cache(maxsize=8)
def _allow_list(entries: tuple[str, ...]) -> tuple[tuple, tuple[str, ...]]:
    networks, names = [], []
    for entry in entries:
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.append(entry.rstrip("."))
    return tuple(networks), tuple(names)


def _allowed() -> tuple[tuple, tuple[str, ...]]:
    return _allow_list(tuple(settings.FACEACCESS_WEBHOOK_ALLOW))


def name_allowed(host: str) -> bool:
    """The host is listed by name in FACEACCESS_WEBHOOK_ALLOW (``.lan`` lists every name under ``lan``)."""
    _, names = _allowed()
    return any(host == n or (n.startswith(".") and host.endswith(n)) for n in names)


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if ip.is_multicast or not ip.is_global:
        return False
    if ip.version == 6:
        if ip.is_site_local:
            return False
        embedded = [ip.ipv4_mapped, ip.sixtofour]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return all(v4 is None or _public(v4) for v4 in embedded)
    return True


def address_allowed(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A public address, or one in an allowed network."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if _public(ip):
        return True
    networks, _ = _allowed()
    plain = ipaddress.ip_address(str(ip).split("%", 1)[0])  # without an IPv6 zone
    return any(plain.version == n.version and plain in n for n in networks)


def _why(ip) -> str:
    for attribute, words in (("is_loopback", "a loopback"), ("is_link_local", "a link-local (or metadata)"),
                             ("is_unspecified", "an unspecified"), ("is_multicast", "a multicast"),
                             ("is_private", "a private")):
        if getattr(ip, attribute, False):
            return words
    return "a non-public"


def _refuse_address(host: str, ip) -> Refused:
    shown = host if host == str(ip) else f"{host} ({ip})"
    return Refused(NOT_ALLOWED, f"{shown} is {_why(ip)} address; webhooks go to public addresses only, unless "
                                "FACEACCESS_WEBHOOK_ALLOW lists it")


def _addresses(target: Target, port: int) -> list[tuple]:
    """getaddrinfo's (family, sockaddr) for the target, or :class:`Failed` when the name does not resolve."""
    try:
        infos = socket.getaddrinfo(target.host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise Failed(NOT_RESOLVED) from None
    return [(family, sockaddr) for family, _, _, _, sockaddr in infos]


def allowed_addresses(target: Target) -> list[tuple]:
    """The addresses to connect to: every resolved one if the host is allowed by name, else the allowed ones;
    :class:`Refused` when there is none (or when the name is one that is never allowed)."""
    listed = name_allowed(target.host)
    if not listed and (target.host in BLOCKED_NAMES or target.host.endswith(".localhost")):
        raise Refused(NOT_ALLOWED, f"{target.host} is this machine or a metadata service")
    found = _addresses(target, target.port)
    if listed:
        return found
    allowed = [(family, sockaddr) for family, sockaddr in found if address_allowed(sockaddr[0])]
    if not allowed:
        raise _refuse_address(target.host, ipaddress.ip_address(found[0][1][0]) if found else target.host)
    return allowed


def check(url: str, resolve: bool = True) -> Target:
    """The URL's target if it may be posted to (:class:`Refused` otherwise). A name that does not resolve now is
    let through (the delivery checks it again); its addresses are checked when it does."""
    target = parse(url)
    ip = _literal(target.host)
    if ip is not None:
        if not address_allowed(ip):
            raise _refuse_address(target.host, ip)
        return target
    if resolve:
        try:
            allowed_addresses(target)
        except Failed:
            pass
    return target


def validate_url(value: str) -> None:
    """Django validator of a webhook URL (the model field's): http(s), no credentials, a public address or an
    allowed one."""
    if not value:
        return
    try:
        check(value)
    except Refused as exc:
        raise ValidationError(exc.detail, code="webhook_target") from None


# ---------------------------------------------------------------- one POST ---------------------------------------

def post(url: str, body: bytes, headers: dict[str, str], *, connect_timeout: float, timeout: float) -> Answer:
    """POST ``body`` to ``url`` on an address checked just now; the status and the redirect's location.

    ``timeout`` bounds the whole attempt (resolution aside: the system's resolver has its own), ``connect_timeout``
    each connection. Raises :class:`Refused` (not allowed) or :class:`Failed` (no usable answer)."""
    target = parse(url)
    started = time.monotonic()
    deadline = started + timeout
    ip = _literal(target.host)
    if ip is not None:
        if not address_allowed(ip):
            raise _refuse_address(target.host, ip)
        addresses = _addresses(target, target.port)
    else:
        addresses = allowed_addresses(target)
    sock = _connect(addresses, target, connect_timeout, deadline)
    try:
        head = [f"POST {target.path} HTTP/1.1", f"Host: {target.host_header}", f"Content-Length: {len(body)}",
                "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        _remaining(sock, deadline)
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        return _read_answer(sock, deadline)
    except Failed:
        raise
    except OSError as exc:
        raise Failed(_reason(exc)) from None
    finally:
        sock.close()


def _remaining(sock: socket.socket, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise Failed(TIMEOUT)
    sock.settimeout(left)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return TIMEOUT
    if isinstance(exc, ConnectionRefusedError):
        return REFUSED
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return RESET
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        return TLS
    return UNREACHABLE


def _connect(addresses: list[tuple], target: Target, connect_timeout: float, deadline: float) -> socket.socket:
    """A connection to the first address that takes one (TLS for https), within the deadline."""
    reason = UNREACHABLE
    for family, sockaddr in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failed(TIMEOUT)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(min(connect_timeout, left))
            sock.connect(sockaddr)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if target.scheme == "https":
                _remaining(sock, deadline)
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=target.host)
            return sock
        except Failed:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            reason = _reason(exc)
            if reason == TLS:
                break
    raise Failed(reason)


def _read_answer(sock: socket.socket, deadline: float) -> Answer:
    """The status line and headers (the body is never read); a 100 Continue is skipped."""
    data = b""
    while True:
        end = data.find(b"\r\n\r\n")
        while end < 0:
            if len(data) > MAX_HEAD:
                raise Failed(BAD_RESPONSE)
            _remaining(sock, deadline)
            chunk = sock.recv(4096)
            if not chunk:
                raise Failed(BAD_RESPONSE if data else RESET)
            data += chunk
            end = data.find(b"\r\n\r\n")
        lines = data[:end].decode("latin-1").split("\r\n")
        data = data[end + 4:]
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not (parts[1].isdigit() and len(parts[1]) == 3):
            raise Failed(BAD_RESPONSE)
        status = int(parts[1])
        if status == 100:
            continue
        location = next((line.split(":", 1)[1].strip() for line in lines[1:]
                         if line.split(":", 1)[0].strip().lower() == "location" and ":" in line), "")
        return Answer(status, location)


def shown_location(location: str) -> str:
    """A redirect's target as a delivery row may show it: scheme, host, port and path, without credentials or
    query, printable, at most 200 characters ("" when it is not an http(s) URL)."""
    try:
        parts = urlsplit(location.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not host:
        return ""
    host = f"[{host}]" if ":" in host else host
    text = f"{parts.scheme.lower()}://{host}{f':{port}' if port else ''}{parts.path}"
    return "".join(c for c in text if c.isprintable() and not c.isspace())[:200]
