"""Decoding untrusted image files into the engine's RGB uint8 arrays.

Everything a camera or an admin can upload passes through :func:`load_image`,
so every way a file can be bad ends in one :class:`ImageError` with a message
a person can act on.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 40_000_000
# JPEG can be decoded at 1/2, 1/4 or 1/8 of its size (the DCT's own scaling, far cheaper than decoding in full
# and shrinking); the other formats cannot, so their size bounds the work a photo costs the engine.
REDUCIBLE_FORMATS = {"JPEG", "MPO"}
# MPO: a JPEG with more frames after the first (phones, stereo cameras); its first frame is used.
ALLOWED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "BMP"}


class ImageError(ValueError):
    """The input cannot be used as a photo; ``code`` is a stable short name."""

    def __init__(self, message: str, code: str = "invalid_image"):
        super().__init__(message)
        self.code = code


def load_image(
    data: bytes | str | Path,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    formats: set[str] | None = None,
    max_decoded_pixels: int | None = None,
    max_full_decode_pixels: int | None = None,
) -> np.ndarray:
    """Decode ``data`` (bytes or a file path) to an (H, W, 3) RGB uint8 array.

    Grey, palette, RGBA and 16-bit images are converted; EXIF orientation is
    applied. Raises :class:`ImageError` for empty, non-image, truncated,
    unsupported or oversized input (checked before the pixels are decoded).

    ``max_decoded_pixels`` bounds the pixels actually decoded, so that one photo
    cannot hold the engine for seconds: a larger JPEG is decoded at the first of
    1/2, 1/4, 1/8 of its size that fits (the array is then that size), any other
    format above it, or above ``max_full_decode_pixels``, is refused
    (``too_many_pixels``): those are decoded in full.
    """
    if isinstance(data, (str, Path)):
        path = Path(data)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageError(f"cannot read {path}: {exc.strerror or exc}", "unreadable") from exc
    if not data:
        raise ImageError("the file is empty (0 bytes)", "empty")
    formats = ALLOWED_FORMATS if formats is None else formats
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in formats:
                raise ImageError(
                    f"unsupported image format {img.format}; use one of {', '.join(sorted(formats))}",
                    "unsupported_format",
                )
            w, h = img.size
            if max_pixels is not None and w * h > max_pixels:
                raise ImageError(
                    f"image is {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,}",
                    "too_many_pixels",
                )
            if img.format not in REDUCIBLE_FORMATS:
                bounds = [b for b in (max_decoded_pixels, max_full_decode_pixels) if b is not None]
                if bounds and w * h > min(bounds):
                    raise ImageError(
                        f"image is {w}x{h} = {w * h:,} pixels; a {img.format} is decoded in full and may have at "
                        f"most {min(bounds):,} (send a JPEG, which is decoded at reduced size, or a smaller image)",
                        "too_many_pixels",
                    )
            elif max_decoded_pixels is not None and w * h > max_decoded_pixels:
                _decode_reduced(img, w, h, max_decoded_pixels)
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError("not an image (expected a JPEG, PNG or WebP picture)", "not_an_image") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image is too large to decode safely: {exc}", "too_many_pixels") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"the image is corrupt or truncated: {exc}", "corrupt") from exc


def decode_scale(width: int, height: int, max_decoded_pixels: int) -> int | None:
    """The JPEG reduction (1, 2, 4 or 8) that brings ``width`` x ``height`` within ``max_decoded_pixels``, or
    None when even 1/8 is too large."""
    for scale in (1, 2, 4, 8):
        if -(-width // scale) * -(-height // scale) <= max_decoded_pixels:
            return scale
    return None


def _decode_reduced(img: Image.Image, width: int, height: int, max_decoded_pixels: int) -> None:
    scale = decode_scale(width, height, max_decoded_pixels)
    if scale is None:
        raise ImageError(
            f"image is {width}x{height} = {width * height:,} pixels, more than 1/8 of it can hold "
            f"({max_decoded_pixels:,} pixels decoded at most)",
            "too_many_pixels",
        )
    # draft() picks the strongest reduction whose result is still at least the size asked for.
    img.draft("RGB", (-(-width // scale), -(-height // scale)))


def _to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        grey = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        grey = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent areas become white rather than whatever colour hides under alpha.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))

