"""Validate an uploaded photo completely before anything is stored.

The web side decodes with the engine's own :func:`load_image` (the same checks
the worker applies later), so an accepted file never fails to decode in the
worker, and a rejected one leaves no row and no file behind.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from rest_framework import status

from .errors import ApiError

FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
MULTIPART_SLACK = 64 * 1024  # boundaries and small fields around the file
# engine ImageError code -> (API error code, HTTP status)
_IMAGE_ERRORS = {
    "empty": ("empty_file", status.HTTP_400_BAD_REQUEST),
    "not_an_image": ("not_an_image", status.HTTP_415_UNSUPPORTED_MEDIA_TYPE),
    "unsupported_format": ("unsupported_format", status.HTTP_415_UNSUPPORTED_MEDIA_TYPE),
    "too_many_pixels": ("too_many_pixels", status.HTTP_413_REQUEST_ENTITY_TOO_LARGE),
    "corrupt": ("corrupt_image", status.HTTP_400_BAD_REQUEST),
}


@dataclass(frozen=True)
class ImageUpload:
    data: bytes
    filename: str
    extension: str  # jpg | png | webp, from the decoded format (never from the client's name)
    width: int
    height: int


def max_upload_bytes() -> int:
    return int(getattr(settings, "FACEACCESS_MAX_UPLOAD_BYTES", 10 * 1024 * 1024))


def max_image_pixels() -> int:
    return int(getattr(settings, "FACEACCESS_MAX_PIXELS", 40_000_000))


def _too_large(size: int | str) -> ApiError:
    return ApiError(
        "too_large",
        f"the upload is {size} bytes, over the limit of {max_upload_bytes():,} bytes",
        status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )


def check_content_length(request) -> None:
    """Refuse an oversized body from its header, before Django reads it."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if length > max_upload_bytes() + MULTIPART_SLACK:
        raise _too_large(f"about {length:,}")


def read_image_upload(request, field: str = "image") -> ImageUpload:
    """The decoded, checked photo from multipart field ``field``, or an :class:`ApiError` naming the problem."""
    check_content_length(request)
    files = request.FILES
    if field not in files:
        if files:
            got = ", ".join(sorted(files))
            raise ApiError("wrong_field", f"send the photo in the multipart field '{field}' (got: {got})")
        raise ApiError("missing_image", f"no file in the multipart field '{field}'")
    if len(files.getlist(field)) > 1:
        raise ApiError("several_files", f"send exactly one file in '{field}'")
    upload = files[field]
    if upload.size > max_upload_bytes():
        raise _too_large(f"{upload.size:,}")
    return validate_image_bytes(upload.read(), upload.name or "")


def validate_image_bytes(data: bytes, filename: str = "") -> ImageUpload:
    """Check a photo's bytes the way the worker will decode them (size, format, truncation, pixels)."""
    from recognition.engine import ImageError, load_image

    if not data:
        raise ApiError("empty_file", "the file is empty (0 bytes)")
    if len(data) > max_upload_bytes():
        raise _too_large(f"{len(data):,}")
    try:
        image = load_image(data, max_pixels=max_image_pixels(), formats=set(FORMATS))
    except ImageError as exc:
        code, http = _IMAGE_ERRORS.get(getattr(exc, "code", ""), ("invalid_image", status.HTTP_400_BAD_REQUEST))
        raise ApiError(code, str(exc), http) from None
    return ImageUpload(data, filename, _extension(data), int(image.shape[1]), int(image.shape[0]))


def _extension(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "img"  # unreachable after load_image accepted one of FORMATS
