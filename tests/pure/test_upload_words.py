"""Upload refusals speak to people: megabytes and megapixels against the limit, not raw byte counts."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from faceaccess.uploads import UploadError, validate_image_bytes


def test_a_file_over_the_size_limit_is_told_in_megabytes(settings):
    settings.FACEACCESS_MAX_UPLOAD_BYTES = 10 * 2 ** 20
    with pytest.raises(UploadError) as exc:
        validate_image_bytes(b"x" * (12 * 2 ** 20 + 5000))
    assert exc.value.code == "too_large" and exc.value.http_status == 413
    assert "12 MB" in exc.value.detail and "10 MB limit" in exc.value.detail
    assert not re.search(r"\d{1,3}(,\d{3}){2,}", exc.value.detail)  # no "12,587,912 bytes"


def test_a_picture_over_the_pixel_limit_is_told_in_megapixels(settings):
    settings.FACEACCESS_MAX_PIXELS = 2_000_000
    data = io.BytesIO()
    Image.new("RGB", (2000, 1500)).save(data, "PNG")
    with pytest.raises(UploadError) as exc:
        validate_image_bytes(data.getvalue())
    assert "2000x1500 (3.0 megapixels)" in exc.value.detail and "2.0 megapixels" in exc.value.detail
