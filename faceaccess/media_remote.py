"""A worker's media on another machine: the web service's stored photos over HTTP, no shared folder.

A worker whose ``FACEACCESS_MEDIA_URL`` is set (``http://web-host:8000``) gets this storage as Django's default
storage: every ``FieldFile`` it opens (a door snapshot, an enrollment photo) is fetched from the web service's
internal endpoint (:mod:`faceaccess.media_endpoint`), and every file it writes (an enrollment photo's aligned face
crop) is sent back there, so it lands in the web service's own store. Embeddings, faces and decisions go to
PostgreSQL as on one machine. The worker authenticates with the worker key (``FACEACCESS_WORKER_KEY``), a
credential of its own, not a user's token.

Why HTTP to the web service rather than an object store or bytes in the task message: docs/running.md, "Scaling
out". On one machine nothing here is used: the worker reads ``MEDIA_ROOT`` as before.

Standard library only (``http.client``), with one keep-alive connection per thread, so that a fetch costs one
round trip and no new TCP connection.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import Storage
from django.utils.deconstruct import deconstructible

log = logging.getLogger(__name__)

ENDPOINT = "/internal/media/"  # where faceaccess.urls routes faceaccess.media_endpoint.media
AUTH_SCHEME = "Worker"  # Authorization: Worker <key>
_RETRIES = 3  # a connection refused or reset (the web service restarting) is tried again, with short pauses


class MediaError(OSError):
    """The web service refused or failed a media request (the status and its words)."""

    def __init__(self, method: str, name: str, status: int, detail: str = "") -> None:
        super().__init__(f"{method} {name}: web service answered {status}{f' ({detail})' if detail else ''}")
        self.status = status


@deconstructible
class WebMediaStorage(Storage):
    """Django storage over the web service's internal media endpoint (see the module's docstring)."""

    def __init__(self, base_url: str | None = None, key: str | None = None, timeout: float | None = None) -> None:
        url = base_url or settings.FACEACCESS_MEDIA_URL
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"FACEACCESS_MEDIA_URL must be an http:// or https:// URL, not {url!r}")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/") + ENDPOINT
        self.key = key or settings.FACEACCESS_WORKER_KEY
        self.timeout = timeout or settings.FACEACCESS_MEDIA_TIMEOUT
        self._local = threading.local()

    # ------------------------------------------------------------------ HTTP
    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            kind = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            conn = kind(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def _request(self, method: str, name: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        path = self.prefix + quote(name, safe="/")
        headers = {"Authorization": f"{AUTH_SCHEME} {self.key}"}
        if body is not None:
            headers["Content-Type"] = "application/octet-stream"
        for attempt in range(_RETRIES):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self._drop()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (ConnectionError, http.client.HTTPException, TimeoutError, OSError) as exc:
                # A kept-alive connection the server closed meanwhile fails on first use: a new one is tried.
                self._drop()
                if attempt == _RETRIES - 1:
                    raise MediaError(method, name, 0, f"{type(exc).__name__}: {exc}") from exc
                time.sleep(0.2 * attempt)
        raise AssertionError("unreachable")

    @staticmethod
    def _detail(data: bytes) -> str:
        try:
            return str(json.loads(data).get("detail", ""))
        except (ValueError, AttributeError):
            return ""

    # ------------------------------------------------------------------ Storage API
    def _open(self, name: str, mode: str = "rb") -> File:
        if "w" in mode or "a" in mode or "+" in mode:
            raise ValueError("media of the web service are opened for reading only; save() writes")
        status, _, data = self._request("GET", name)
        if status == 404:
            raise FileNotFoundError(f"{name}: not in the web service's media")
        if status != 200:
            raise MediaError("GET", name, status, self._detail(data))
        return ContentFile(data, name=name)

    def _save(self, name: str, content: Any) -> str:
        if hasattr(content, "seek"):
            content.seek(0)
        data = content.read()
        status, _, answer = self._request("PUT", name, body=data if isinstance(data, bytes) else data.encode())
        if status not in (200, 201):
            raise MediaError("PUT", name, status, self._detail(answer))
        return str(json.loads(answer)["name"])  # the web's store may have renamed it (a name already taken)

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return name  # the web service's store picks a free name when it saves (no extra round trip here)

    def delete(self, name: str) -> None:
        if not name:
            raise ValueError("the name of the file to delete must be given")
        status, _, data = self._request("DELETE", name)
        if status not in (200, 204, 404):
            raise MediaError("DELETE", name, status, self._detail(data))

    def exists(self, name: str) -> bool:
        status, _, data = self._request("HEAD", name)
        if status not in (200, 404):
            raise MediaError("HEAD", name, status, self._detail(data))
        return status == 200

    def size(self, name: str) -> int:
        status, headers, data = self._request("HEAD", name)
        if status != 200:
            raise MediaError("HEAD", name, status, self._detail(data))
        return int(headers.get("x-media-size", 0))  # faceaccess.media_endpoint.SIZE_HEADER

    def url(self, name: str | None) -> str:
        raise NotImplementedError("stored photos are never served by URL")
