"""The web service's internal media endpoint: how a worker on another machine reads and writes stored photos.

``/internal/media/<name>``, for workers only (``Authorization: Worker <FACEACCESS_WORKER_KEY>``; a user's token
or session gets 403 like anybody else):

- ``GET`` / ``HEAD``: a stored door snapshot, enrollment photo or face crop (``snapshots/``, ``faces/``,
  ``crops/``);
- ``PUT``: a file the worker made (``crops/`` only: enrollment's aligned face crops); answers the stored name;
- ``DELETE``: a stored file (a replaced crop; retention or erasure run by a worker elsewhere).

The worker side is :class:`faceaccess.media_remote.WebMediaStorage`. The files are read and written through this
process's default storage (the local ``MEDIA_ROOT``), the same one the console and the API use.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .media_remote import AUTH_SCHEME, WebMediaStorage

log = logging.getLogger(__name__)

READABLE = ("snapshots/", "faces/", "crops/")  # what a worker may read (and delete)
WRITABLE = ("crops/",)  # what a worker makes: nothing else may be written through here
SIZE_HEADER = "X-Media-Size"


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


def worker_authorized(request: HttpRequest) -> bool:
    """Whether the request carries the worker key (compared in constant time)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    key = settings.FACEACCESS_WORKER_KEY
    return bool(key) and scheme == AUTH_SCHEME and hmac.compare_digest(given.strip().encode(), key.encode())


def _bad_name(name: str) -> bool:
    parts = name.split("/")
    return not name or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts)


@csrf_exempt
def media(request: HttpRequest, name: str) -> Any:
    if not worker_authorized(request):
        return _error(403, "forbidden", "this endpoint is for FaceAccess workers (Authorization: Worker <key>)")
    if isinstance(default_storage, WebMediaStorage):  # a web service must not fetch its media from itself
        return _error(503, "misconfigured", "this process reads its media from FACEACCESS_MEDIA_URL itself")
    if _bad_name(name) or not name.startswith(READABLE):
        return _error(404, "not_found", "no such stored file")
    try:
        if request.method in ("GET", "HEAD"):
            if not default_storage.exists(name):
                return _error(404, "not_found", "no such stored file")
            if request.method == "HEAD":
                response = HttpResponse(status=200)
                response[SIZE_HEADER] = str(default_storage.size(name))
                return response
            return FileResponse(default_storage.open(name, "rb"), content_type="application/octet-stream")
        if request.method == "PUT":
            return _put(request, name)
        if request.method == "DELETE":
            default_storage.delete(name)
            return HttpResponse(status=204)
    except SuspiciousFileOperation:
        return _error(404, "not_found", "no such stored file")
    return _error(405, "method_not_allowed", "GET, HEAD, PUT or DELETE")


def _put(request: HttpRequest, name: str) -> JsonResponse:
    if not name.startswith(WRITABLE):
        return _error(403, "not_writable", f"workers write only under {', '.join(WRITABLE)}")
    size = int(request.headers.get("Content-Length") or 0)
    if size <= 0 or size > settings.FACEACCESS_MAX_UPLOAD_BYTES:
        return _error(413 if size else 400, "bad_size", f"a file of 1 to {settings.FACEACCESS_MAX_UPLOAD_BYTES} bytes")
    data = request.read(size)  # not request.body: DATA_UPLOAD_MAX_MEMORY_SIZE is for forms, not worker files
    if len(data) != size:
        return _error(400, "incomplete", f"{len(data)} of {size} bytes arrived")
    stored = default_storage.save(name, ContentFile(data))
    log.debug("worker stored %s", stored)
    return JsonResponse({"name": stored}, status=201)
