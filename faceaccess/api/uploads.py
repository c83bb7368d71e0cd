"""The photo of a multipart request, checked by :mod:`faceaccess.uploads`, or a JSON 4xx naming the problem."""

from __future__ import annotations

from django.conf import settings

from faceaccess.uploads import ImageUpload, UploadError, too_large, validate_image_bytes

from .errors import ApiError

MULTIPART_SLACK = 64 * 1024  # boundaries and small fields around the file


def api_error(exc: UploadError) -> ApiError:
    return ApiError(exc.code, exc.detail, exc.http_status)


def check_content_length(request) -> None:
    """Refuse an oversized body from its header, before Django reads it."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if length > settings.FACEACCESS_MAX_UPLOAD_BYTES + MULTIPART_SLACK:
        raise api_error(too_large(length, about=True))


def read_image_upload(request, field: str = "image") -> ImageUpload:
    """The checked photo from multipart field ``field``, or an :class:`ApiError` naming the problem."""
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
    if upload.size > settings.FACEACCESS_MAX_UPLOAD_BYTES:
        raise api_error(too_large(upload.size))
    try:
        return validate_image_bytes(upload.read(), upload.name or "")
    except UploadError as exc:
        raise api_error(exc) from None
