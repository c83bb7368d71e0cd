"""Issue 9, defect 7: tiny uploads, huge memory. A 127 kB PNG of 6500x6100 (39.6 MP, under the 40 MP limit)
cost the web process ~530 MB while it checked the upload. The web process now reads type and size from the
header only; the worker decodes, and at most FACEACCESS_MAX_CONCURRENT_DECODES decodes run at once."""

from __future__ import annotations

import io
import struct
import threading
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
from PIL import ImageFile

from faceaccess.uploads import validate_image_bytes

WIDTH, HEIGHT = 6500, 6100  # 39.65 MP: 119 MB of RGB pixels once decoded


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def black_png(width: int, height: int) -> bytes:
    """A valid RGB PNG, written row by row (the test itself never holds the pixels)."""
    comp = zlib.compressobj(9)
    row = bytes(1 + 3 * width)  # filter byte + black pixels
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    data = black_png(WIDTH, HEIGHT)
    assert len(data) < 200_000
    return data


def test_the_upload_check_never_decodes_the_pixels(huge_png, monkeypatch, settings):
    settings.FACEACCESS_MAX_DECODED_PIXELS = settings.FACEACCESS_MAX_FULL_DECODE_PIXELS = 0  # accepted where allowed
    def decode(self):
        raise AssertionError("the web process decoded the pixels of an upload")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decode)
    upload = validate_image_bytes(huge_png, "big.png")
    assert (upload.extension, upload.width, upload.height) == ("png", WIDTH, HEIGHT)


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM := current RSS
    except OSError:
        return False
    return True


def test_checking_a_39_mp_png_takes_little_memory(huge_png, settings):
    settings.FACEACCESS_MAX_DECODED_PIXELS = settings.FACEACCESS_MAX_FULL_DECODE_PIXELS = 0
    tracemalloc.start()
    try:
        validate_image_bytes(huge_png, "big.png")
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert traced_peak < 2 * 1024 * 1024, f"Python allocations peaked at {traced_peak:,} bytes"
    # Pillow allocates decoded pixels with malloc, which tracemalloc does not see: the process's peak RSS does.
    if not _reset_peak_rss():
        pytest.skip("cannot reset the peak RSS here (/proc/self/clear_refs)")
    before = _peak_rss_kib()
    validate_image_bytes(huge_png, "big.png")
    grown_mib = (_peak_rss_kib() - before) / 1024
    assert grown_mib < 16, f"checking the upload grew the process by {grown_mib:.0f} MiB (decoded: ~116 MiB)"


@pytest.mark.django_db
def test_the_api_refuses_a_39_mp_png_from_its_header(camera, media, huge_png):
    """By default (issue 17): over the site's 4K and over what the engine decodes in full, refused, nothing kept."""
    from access.models import AccessEvent

    f = io.BytesIO(huge_png)
    f.name = "big.png"
    response = camera.client().post("/api/v1/snapshots/", {"image": f}, format="multipart")
    assert response.status_code == 413, response.content
    assert response.json()["error"] == "too_many_pixels" and not AccessEvent.objects.exists()


@pytest.mark.django_db
def test_the_api_accepts_a_39_mp_png_from_its_header_where_allowed(camera, media, huge_png, settings):
    from access.models import AccessEvent, Site

    settings.FACEACCESS_MAX_DECODED_PIXELS = settings.FACEACCESS_MAX_FULL_DECODE_PIXELS = 0
    Site.objects.filter(pk=camera.camera.site_id).update(max_snapshot_pixels=0)
    f = io.BytesIO(huge_png)
    f.name = "big.png"
    response = camera.client().post("/api/v1/snapshots/", {"image": f}, format="multipart")
    assert response.status_code == 202, response.content
    assert (AccessEvent.objects.get().image_width, AccessEvent.objects.get().image_height) == (WIDTH, HEIGHT)


class _Stored:
    """What read_image needs of a FieldFile."""

    def open(self, mode: str = "rb"):
        return io.BytesIO(b"photo bytes")


def test_decodes_in_the_worker_are_bounded(settings, monkeypatch):
    import recognition.engine
    from recognition.pipelines import read_image

    settings.FACEACCESS_MAX_CONCURRENT_DECODES = 2
    lock = threading.Lock()
    running, most = 0, 0

    def slow_decode(data, max_pixels=None, formats=None, max_decoded_pixels=None, max_full_decode_pixels=None):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.15)
        with lock:
            running -= 1
        return data

    monkeypatch.setattr(recognition.engine, "load_image", slow_decode)
    threads = [threading.Thread(target=read_image, args=(_Stored(),)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert most == 2


def test_the_worker_keeps_its_own_pixel_limit(settings):
    from recognition.engine import ImageError
    from recognition.pipelines import read_image

    class Big(_Stored):
        def open(self, mode: str = "rb"):
            return io.BytesIO(black_png(200, 100))

    settings.FACEACCESS_MAX_PIXELS = 10_000
    with pytest.raises(ImageError, match="over the limit"):
        read_image(Big())
