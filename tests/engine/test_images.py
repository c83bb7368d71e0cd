import io

import numpy as np
import pytest
from PIL import Image

from recognition.engine.images import ImageError, load_image


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_rgb_jpeg_round_trip(tmp_path):
    arr = np.zeros((20, 30, 3), np.uint8)
    arr[..., 0] = 200
    p = tmp_path / "a.png"
    p.write_bytes(encode(Image.fromarray(arr), "PNG"))
    out = load_image(p)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert (out[..., 0] == 200).all() and (out[..., 1] == 0).all()


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA"])
def test_other_modes_become_rgb(mode):
    img = Image.new(mode, (16, 12))
    out = load_image(encode(img, "PNG"))
    assert out.shape == (12, 16, 3) and out.dtype == np.uint8


def test_sixteen_bit_png_is_scaled_not_clipped():
    arr = np.full((8, 8), 65535, np.uint16)
    arr[0, 0] = 0
    out = load_image(encode(Image.fromarray(arr), "PNG"))
    assert out.shape == (8, 8, 3)
    assert out[1, 1, 0] == 255 and out[0, 0, 0] == 0


@pytest.mark.parametrize(
    "data,code",
    [
        (b"", "empty"),
        (b"hello, I am text, not a photo", "not_an_image"),
        (b"%PDF-1.4 fake", "not_an_image"),
    ],
)
def test_bad_bytes(data, code):
    with pytest.raises(ImageError) as exc:
        load_image(data)
    assert exc.value.code == code


def test_truncated_jpeg():
    data = encode(Image.new("RGB", (200, 200), (10, 200, 30)), "JPEG")
    with pytest.raises(ImageError) as exc:
        load_image(data[: len(data) // 2])
    assert exc.value.code == "corrupt"


def test_pixel_limit_checked_before_decoding():
    data = encode(Image.new("L", (3000, 3000)), "PNG")
    with pytest.raises(ImageError) as exc:
        load_image(data, max_pixels=1_000_000)
    assert exc.value.code == "too_many_pixels" and "3000x3000" in str(exc.value)


def test_unsupported_format_is_refused():
    data = encode(Image.new("RGB", (10, 10)), "GIF")
    with pytest.raises(ImageError) as exc:
        load_image(data)
    assert exc.value.code == "unsupported_format"


def test_missing_file(tmp_path):
    with pytest.raises(ImageError) as exc:
        load_image(tmp_path / "nope.jpg")
    assert exc.value.code == "unreadable"


def test_a_large_jpeg_is_decoded_at_reduced_size():
    """A JPEG over max_decoded_pixels is decoded at the first of 1/2, 1/4, 1/8 that fits (its DCT scaling):
    the engine's work for one photo stays bounded, and the picture is still the same picture."""
    img = Image.new("RGB", (4000, 3000), (200, 30, 30))
    img.paste((30, 30, 200), (2000, 0, 4000, 3000))  # right half blue
    data = encode(img, "JPEG")
    full = load_image(data)
    assert full.shape == (3000, 4000, 3)
    reduced = load_image(data, max_decoded_pixels=1_000_000)  # 12 MP -> 1/4 = 1000x750
    assert reduced.shape == (750, 1000, 3)
    assert reduced[375, 200, 0] > 150 and reduced[375, 800, 2] > 150  # red left, blue right
    assert load_image(data, max_decoded_pixels=12_000_000).shape == (3000, 4000, 3)  # within: in full


def test_a_large_png_is_refused_rather_than_decoded_in_full():
    data = encode(Image.new("RGB", (3000, 2000)), "PNG")
    with pytest.raises(ImageError) as exc:
        load_image(data, max_decoded_pixels=1_000_000)
    assert exc.value.code == "too_many_pixels" and "decoded in full" in str(exc.value)
    assert load_image(data, max_decoded_pixels=6_000_000).shape == (2000, 3000, 3)
    with pytest.raises(ImageError):  # a PNG's own, tighter bound (what a full decode costs)
        load_image(data, max_decoded_pixels=6_000_000, max_full_decode_pixels=1_000_000)
    jpeg = encode(Image.new("RGB", (3000, 2000)), "JPEG")  # a JPEG is not bound by it
    assert load_image(jpeg, max_decoded_pixels=6_000_000, max_full_decode_pixels=1_000_000).shape == (2000, 3000, 3)
