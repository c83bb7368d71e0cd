"""Thumbnails served by the server (faceaccess.thumbnails), with Cache-Control and an ETag: the access log's
rows, the dashboard and the strangers' faces no longer download full snapshots."""

from __future__ import annotations

from django.http import Http404, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404

from access.models import AccessEvent
from enrollment.models import FaceImage
from faceaccess import thumbnails

from .base import role_required

EVENT_SIDE, FACE_SIDE, PHOTO_SIDE = 160, 112, 320


def _answer(request, file, tag: str, max_side: int, box=None) -> HttpResponse:
    if request.headers.get("If-None-Match") == tag:
        response = HttpResponseNotModified()
    else:
        try:
            with file.open("rb") as handle:
                data = handle.read()
            response = HttpResponse(thumbnails.thumbnail(data, max_side, box), content_type="image/jpeg")
        except (OSError, ValueError):
            raise Http404("the stored picture cannot be read") from None
    response["ETag"], response["Cache-Control"] = tag, thumbnails.CACHE_CONTROL
    return response


@role_required()
def event_thumb(request, pk: int):
    event = get_object_or_404(AccessEvent, pk=pk)
    if not event.snapshot:
        raise Http404("this event has no stored snapshot")
    return _answer(request, event.snapshot, thumbnails.etag_for("event", pk, event.snapshot.name), EVENT_SIDE)


@role_required()
def event_face_thumb(request, pk: int, index: int):
    event = get_object_or_404(AccessEvent, pk=pk)
    face = event.faces.filter(index=index).first()
    if not event.snapshot or face is None or not face.box:
        raise Http404("no such face in a stored snapshot")
    tag = thumbnails.etag_for("face", pk, index, event.snapshot.name)
    return _answer(request, event.snapshot, tag, FACE_SIDE, box=face.box)


@role_required()
def photo_thumb(request, pk: int):
    photo = get_object_or_404(FaceImage, pk=pk)
    if not photo.image:
        raise Http404
    box = photo.box if request.GET.get("face") and photo.box else None
    tag = thumbnails.etag_for("photo", pk, photo.image.name, bool(box), photo.chosen_face)
    return _answer(request, photo.image, tag, FACE_SIDE if box else PHOTO_SIDE, box=box)
