"""Checks on an uploaded photo before anything is stored: size, format, pixel count, from its header only.

Plain Pillow, no engine and no torch, so the web process stays light, and the pixels are never decoded
here: a 127 kB PNG can hold 40 MP, over 100 MB once decoded, and the web process must not pay that per
request. The worker decodes the stored file with the engine's own loader (same formats, same pixel
limit), so a file cut short after its header ends ``failed`` there, with the reason. :func:`decode_slot`
bounds how many decodes run at once in a process. A refused photo raises :class:`UploadError`, which the
API turns into a 4xx and the bulk import into a skipped-file line.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, UnidentifiedImageError

# Formats the engine can decode at reduced size (JPEG's DCT scaling); the others are decoded in full.
REDUCIBLE = {"JPEG", "MPO"}

# Pillow format name -> stored file extension.
# MPO is a JPEG with more frames after the first (phones, some cameras): stored as it came, a .jpg, and the
# worker decodes the first frame.
FORMATS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp"}


class UploadError(ValueError):
    """A photo that cannot be accepted; ``code`` is stable and ``http_status`` says which 4xx it deserves."""

    def __init__(self, code: str, detail: str, http_status: int = 400):
        super().__init__(detail)
        self.code, self.detail, self.http_status = code, detail, http_status


@dataclass(frozen=True)
class ImageUpload:
    data: bytes
    filename: str
    extension: str  # jpg | png | webp, from the decoded format (never from the client's name)
    width: int
    height: int


def megabytes(size: int) -> str:
    """12_345_678 -> '11.8 MB' (binary megabytes, as the limit is set): words people read, not byte counts."""
    return f"{size / 2 ** 20:.1f} MB".replace(".0 MB", " MB")


def pixels(n: int) -> str:
    return f"{n / 1e6:.1f} megapixels" if n >= 1_000_000 else f"{n:,} pixels"


def too_large(size: int, about: bool = False) -> UploadError:
    limit = settings.FACEACCESS_MAX_UPLOAD_BYTES
    return UploadError("too_large", f"the file is {'about ' if about else ''}{megabytes(size)}, over the "
                                    f"{megabytes(limit)} limit: send a smaller photo (a door snapshot or a portrait "
                                    "needs far less)", 413)


def validate_image_bytes(data: bytes, filename: str = "") -> ImageUpload:
    """The checked photo, or :class:`UploadError` naming what is wrong with it."""
    if not data:
        raise UploadError("empty_file", "the file is empty (0 bytes)")
    if len(data) > settings.FACEACCESS_MAX_UPLOAD_BYTES:
        raise too_large(len(data))
    max_pixels = settings.FACEACCESS_MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in FORMATS:
                raise UploadError(
                    "unsupported_format",
                    f"unsupported image format {img.format}; use one of {', '.join(sorted(FORMATS))}",
                    415,
                )
            width, height = img.size
            if width * height > max_pixels:
                raise UploadError(
                    "too_many_pixels",
                    f"the image is {width}x{height} ({pixels(width * height)}), over the limit of "
                    f"{pixels(max_pixels)}: send a smaller picture",
                    413,
                )
            full_decode = min([b for b in (settings.FACEACCESS_MAX_DECODED_PIXELS,
                                           settings.FACEACCESS_MAX_FULL_DECODE_PIXELS) if b] or [0])
            if full_decode and img.format not in REDUCIBLE and width * height > full_decode:
                raise UploadError(
                    "too_many_pixels",
                    f"image is a {width}x{height} {img.format} = {width * height:,} pixels; a {img.format} is "
                    f"decoded in full and may have at most {full_decode:,} (send a JPEG, or a smaller image)",
                    413,
                )
    except UploadError:
        raise
    except UnidentifiedImageError:
        raise UploadError("not_an_image", "not an image (expected a JPEG, PNG or WebP picture)", 415) from None
    except Image.DecompressionBombError as exc:
        raise UploadError("too_many_pixels", f"image is too large to decode safely: {exc}", 413) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UploadError("corrupt_image", f"the image is corrupt or truncated: {exc}") from None
    return ImageUpload(data, filename, FORMATS[img.format], int(width), int(height))


_decode_slots: dict[int, threading.BoundedSemaphore] = {}
_decode_slots_lock = threading.Lock()


@contextmanager
def decode_slot() -> Iterator[None]:
    """Hold one of this process's FACEACCESS_MAX_CONCURRENT_DECODES slots while decoding a photo's pixels
    (a 40 MP photo is ~120 MB decoded, more while it is converted)."""
    limit = max(1, settings.FACEACCESS_MAX_CONCURRENT_DECODES)
    with _decode_slots_lock:
        slots = _decode_slots.setdefault(limit, threading.BoundedSemaphore(limit))
    with slots:
        yield
