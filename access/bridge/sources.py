"""Camera source URLs: which kind of source a URL is, its credentials kept apart, and the URL as it may be shown.

Pure functions, no Django: the model and the API use them to store and show a source, the bridge to open it.
A source's user name and password are stored apart from its URL (``Camera.stream_username`` / ``stream_password``)
so that the URL itself can be shown in the API, the console, the log and the audit trail without them.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit, urlunsplit

RTSP, SNAPSHOT, MJPEG, DEVICE = "rtsp", "snapshot", "mjpeg", "device"
KINDS = (RTSP, SNAPSHOT, MJPEG, DEVICE)
KIND_CHOICES = [
    (RTSP, "RTSP stream (H.264/H.265, over TCP)"),
    (SNAPSHOT, "HTTP snapshot URL (a JPEG per request, polled)"),
    (MJPEG, "MJPEG stream over HTTP"),
    (DEVICE, "local device (/dev/videoN)"),
]
_DEVICE = re.compile(r"^/dev/video\d{1,3}$")


class BadSource(ValueError):
    """The text is not a source the bridge can read; the message says why (without any credentials)."""


def split_credentials(url: str) -> tuple[str, str, str]:
    """``url`` without its user name and password, and those two (URL-decoded; empty when absent)."""
    url = url.strip()
    if not url or _DEVICE.match(url):
        return url, "", ""
    try:
        parts = urlsplit(url)
        username, password = parts.username, parts.password
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        raise BadSource("not a valid URL") from None
    if username is None and password is None:
        return url, "", ""
    host = f"[{host}]" if ":" in host else host
    bare = urlunsplit(parts._replace(netloc=host + (f":{port}" if port else "")))
    return bare, unquote(username or ""), unquote(password or "")


def with_credentials(url: str, username: str, password: str) -> str:
    """The URL to open: ``url`` with the credentials put back (percent-encoded), for FFmpeg's RTSP and HTTP."""
    if not (username or password) or _DEVICE.match(url):
        return url
    parts = urlsplit(url)
    auth = quote(username, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit(parts._replace(netloc=f"{auth}@{parts.netloc}"))


def check(url: str, kind: str = "") -> str:
    """The source's kind ("rtsp", "snapshot", "mjpeg", "device"), or BadSource saying what is wrong. An http(s)
    URL is a snapshot URL unless ``kind`` says mjpeg; ``kind`` must agree with the URL's scheme."""
    if kind and kind not in KINDS:
        raise BadSource(f"unknown source kind {kind!r}: one of {', '.join(KINDS)}")
    if _DEVICE.match(url):
        found = DEVICE
    else:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise BadSource("not a valid URL") from None
        if parts.scheme in ("rtsp", "rtsps"):
            found = RTSP
        elif parts.scheme in ("http", "https"):
            found = kind if kind in (SNAPSHOT, MJPEG) else SNAPSHOT
        else:
            raise BadSource("a source is rtsp://, rtsps://, http(s):// or /dev/videoN")
        if not parts.hostname:
            raise BadSource("the URL has no host")
        if any(ord(c) < 33 for c in url):
            raise BadSource("the URL contains spaces or control characters")
    if kind and kind != found:
        raise BadSource(f"a {found} URL cannot be read as {kind}")
    return found


def shown(url: str) -> str:
    """The URL as it may appear anywhere (the log, an error): never with a user name or password."""
    try:
        return split_credentials(url)[0]
    except BadSource:
        return "(unreadable URL)"


def redact(text: str, *secrets: str) -> str:
    """``text`` with every non-empty secret (and its URL-encoded form) replaced, for a library's error messages."""
    for secret in secrets:
        if secret:
            for form in {secret, quote(secret, safe="")}:
                text = text.replace(form, "***")
    return text
