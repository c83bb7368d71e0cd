"""The camera bridge's pure parts: source URLs and their credentials, the derived bridge keys, the motion gate and
the choice of the sharpest frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from access.bridge import keys, sources
from access.bridge.motion import MotionGate, best_frame


@pytest.mark.parametrize(("url", "bare", "user", "password"), [
    ("rtsp://admin:p%40ss%3Aword@10.0.0.5:554/Streaming/Channels/102", "rtsp://10.0.0.5:554/Streaming/Channels/102",
     "admin", "p@ss:word"),
    ("http://192.168.1.20/cgi-bin/snapshot.cgi", "http://192.168.1.20/cgi-bin/snapshot.cgi", "", ""),
    ("http://viewer@[fe80::1]:8080/video.mjpg", "http://[fe80::1]:8080/video.mjpg", "viewer", ""),
    ("/dev/video0", "/dev/video0", "", ""),
])
def test_credentials_come_apart_and_go_back(url, bare, user, password):
    assert sources.split_credentials(url) == (bare, user, password)
    assert sources.split_credentials(sources.with_credentials(bare, user, password)) == (bare, user, password)
    assert password == "" or password not in sources.shown(url)


@pytest.mark.parametrize(("url", "kind", "found"), [
    ("rtsp://h/x", "", "rtsp"), ("rtsps://h/x", "rtsp", "rtsp"), ("http://h/snap.jpg", "", "snapshot"),
    ("https://h/video.mjpg", "mjpeg", "mjpeg"), ("/dev/video2", "", "device")])
def test_source_kinds(url, kind, found):
    assert sources.check(url, kind) == found


@pytest.mark.parametrize(("url", "kind"), [("ftp://h/x", ""), ("rtsp://h/x", "mjpeg"), ("http://h/x", "rtsp"),
                                            ("/dev/video0", "rtsp"), ("rtsp:///x", ""), ("rtsp://h/a b", ""),
                                            ("rtsp://h/x", "nonsense"), ("/etc/passwd", "")])
def test_bad_sources(url, kind):
    with pytest.raises(sources.BadSource):
        sources.check(url, kind)


def test_bridge_keys_are_per_camera_and_per_token():
    key = keys.bridge_key("token-a", 42)
    assert key.startswith("fa_x000002a_") and keys.camera_id_of(key, "token-a") == 42
    assert keys.camera_id_of(key, "token-b") is None
    assert keys.camera_id_of(key.replace("x000002a", "x000002b"), "token-a") is None
    assert keys.camera_id_of("fa_0123abcd_whatever", "token-a") is None  # a camera's own key
    with pytest.raises(ValueError):
        keys.bridge_key("", 1)


def scene(person: bool = False, blur: int = 0) -> np.ndarray:
    frame = np.full((480, 640, 3), 160, np.uint8)
    if person:
        cv2.rectangle(frame, (400, 100), (560, 400), (40, 60, 90), -1)
        cv2.putText(frame, "A", (440, 300), cv2.FONT_HERSHEY_SIMPLEX, 4, (250, 250, 250), 8)
    return cv2.GaussianBlur(frame, (0, 0), blur) if blur else frame


def test_the_motion_gate_opens_on_change_in_the_region_only():
    gate = MotionGate(1.0, None)
    assert not gate.moved(scene()) and not gate.moved(scene())  # the first frame and a still door
    assert gate.moved(scene(person=True))
    left = MotionGate(1.0, [0.0, 0.0, 0.5, 1.0])  # a door zone on the left: the person on the right is ignored
    left.moved(scene())
    assert not left.moved(scene(person=True))
    always = MotionGate(0.0, None)
    always.moved(scene())
    assert always.moved(scene())


def test_the_sharpest_frame_of_a_burst_is_chosen():
    burst = [scene(True, blur=4), scene(True), scene(True, blur=2)]
    assert best_frame(burst, None) == 1


def test_a_failing_source_says_nothing_of_its_credentials(tmp_path):
    """OpenCV and FFmpeg print their own errors, which can quote the URL: the bridge's process silences them and
    says what failed in its own words."""
    import subprocess
    import sys
    from pathlib import Path

    from faceaccess.embedded.process import free_port

    port = free_port()
    probe = f"""
from access.bridge.quiet import quiet_opencv
quiet_opencv()
from access.bridge.capture import StreamError, open_source
for url, kind in (("rtsp://127.0.0.1:{port}/door", "rtsp"), ("http://127.0.0.1:{port}/v.mjpg", "mjpeg"),
                  ("http://127.0.0.1:{port}/snap.jpg", "snapshot")):
    try:
        open_source(url, "viewer", "S3cret-pw", kind, 5)
    except StreamError as exc:
        print("failed:", exc.word)
"""
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo), "HOME": str(tmp_path),
                               # FFmpeg's debug level quotes the URL with its password: the bridge overrides it
                               "OPENCV_FFMPEG_LOGLEVEL": "48"})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert output.count("failed:") == 3 and "S3cret" not in output and "viewer" not in output, output

