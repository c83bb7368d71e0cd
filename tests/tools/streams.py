"""Real camera streams made here, for the bridge's tests and benchmark:

- :func:`walkin_clip`: an H.264 MP4 (Debian's ffmpeg) of a person walking in: empty frames of a door, then an LFW
  face, at a given size and frame rate;
- :class:`RtspServer`: GStreamer's RTSP server (Debian's python3 + gst-rtsp-server) serving such clips;
- :class:`SnapshotServer`: an HTTP camera with a snapshot URL behind digest authentication (or basic), and an MJPEG
  stream, showing whatever frame the test sets.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from tests.tools.mosquitto import need

RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")
DEBIAN_PYTHON = "/usr/bin/python3"


def need_rtsp_tools() -> None:
    need("ffmpeg", "ffmpeg")
    need(DEBIAN_PYTHON, "python3")
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
                           capture_output=True)
    if probe.returncode != 0:
        need("/nonexistent/gst-rtsp-server", "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good "
             "gstreamer1.0-plugins-bad")


def door(size: tuple[int, int]) -> np.ndarray:
    """An empty door scene: a grey wall with a darker door frame (not flat, so the encoder has something to do)."""
    w, h = size
    frame = np.full((h, w, 3), 170, np.uint8)
    frame[:, : w // 6] = 120
    frame[:, -w // 6:] = 120
    cv2.rectangle(frame, (w // 4, h // 10), (3 * w // 4, h), (90, 80, 70), max(2, w // 100))
    return frame


def with_face(background: np.ndarray, face_path: Path, face_fraction: float = 0.6) -> np.ndarray:
    """The scene with an LFW photo (250x250, the face in its middle) pasted in the middle, ``face_fraction`` of the
    frame's height."""
    frame = background.copy()
    h, w = frame.shape[:2]
    side = int(h * face_fraction)
    face = cv2.resize(cv2.imread(str(face_path)), (side, side), interpolation=cv2.INTER_CUBIC)
    y, x = (h - side) // 2, (w - side) // 2
    frame[y:y + side, x:x + side] = face
    return frame


def walkin_clip(out: Path, face_path: Path, size: tuple[int, int] = (640, 480), fps: int = 10,
                empty_s: float = 2.0, face_s: float = 8.0) -> Path:
    """An H.264 clip: ``empty_s`` seconds of the empty door, then the face for ``face_s`` seconds. Its face's
    first frame is at ``empty_s`` seconds."""
    need("ffmpeg", "ffmpeg")
    frames = out.with_suffix(".frames")
    frames.mkdir(parents=True, exist_ok=True)
    empty, face = door(size), with_face(door(size), face_path)
    n_empty, n_face = int(empty_s * fps), int(face_s * fps)
    for i in range(n_empty + n_face):
        cv2.imwrite(str(frames / f"{i:05d}.png"), empty if i < n_empty else face)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-framerate", str(fps), "-i", str(frames / "%05d.png"),
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", str(fps), str(out)],
                   check=True)
    shutil.rmtree(frames)
    return out


class RtspServer:
    """``rtsp://127.0.0.1:<port>/<mount>`` for each clip; ``stop()`` drops every stream, ``start()`` brings them
    back."""

    def __init__(self, port: int, clips: dict[str, Path], log: Path):
        need_rtsp_tools()
        self.port, self.clips, self.log = port, clips, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> RtspServer:
        args = [DEBIAN_PYTHON, str(RTSP_SERVER), str(self.port), *(f"{m}={p}" for m, p in self.clips.items())]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                                         start_new_session=True)
        from faceaccess.embedded.process import port_is_open

        deadline = time.monotonic() + 15
        while not port_is_open("127.0.0.1", self.port):
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()[-2000:]
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def url(self, mount: str, auth: str = "") -> str:
        return f"rtsp://{auth + '@' if auth else ''}127.0.0.1:{self.port}/{mount}"


class SnapshotServer:
    """An HTTP camera: ``/snapshot.jpg`` (one JPEG per request) and ``/mjpeg`` (a multipart MJPEG stream at ``fps``),
    behind digest (``auth="digest"``) or basic authentication with ``username`` / ``password``. ``frame`` is what
    the camera sees now; ``requests`` counts the snapshots served."""

    def __init__(self, username: str, password: str, auth: str = "digest", fps: float = 10.0):
        self.username, self.password, self.auth, self.fps = username, password, auth, fps
        self.frame = door((640, 480))
        self.requests = 0
        self.refused = 0
        self.realm, self.nonce = "camera", secrets.token_hex(8)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/snapshot.jpg", auth: str = "") -> str:
        return f"http://{auth + '@' if auth else ''}127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def jpeg(self) -> bytes:
        return cv2.imencode(".jpg", self.frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()

    def authorised(self, header: str, method: str, path: str) -> bool:
        if self.auth == "basic":
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return header == f"Basic {expected}"
        if not header.startswith("Digest "):
            return False
        fields = dict(part.strip().split("=", 1) for part in header[7:].split(",") if "=" in part)
        fields = {k: v.strip('"') for k, v in fields.items()}
        md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731 - RFC 2617's MD5, for the test camera
        ha1 = md5(f"{self.username}:{self.realm}:{self.password}")
        ha2 = md5(f"{method}:{fields.get('uri', '')}")
        expected = md5(f"{ha1}:{fields.get('nonce')}:{fields.get('nc')}:{fields.get('cnonce')}:"
                       f"{fields.get('qop')}:{ha2}")
        return fields.get("username") == self.username and fields.get("nonce") == self.nonce \
            and fields.get("response") == expected

    def _handler(self):
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if not camera.authorised(self.headers.get("Authorization", ""), "GET", self.path):
                    camera.refused += 1
                    self.send_response(401)
                    challenge = (f'Digest realm="{camera.realm}", nonce="{camera.nonce}", qop="auth", '
                                 'algorithm=MD5' if camera.auth == "digest" else f'Basic realm="{camera.realm}"')
                    self.send_header("WWW-Authenticate", challenge)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path.startswith("/mjpeg"):
                    return self.mjpeg()
                camera.requests += 1
                data = camera.jpeg()
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def mjpeg(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while True:
                        data = camera.jpeg()
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                         + f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        time.sleep(1.0 / camera.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler
