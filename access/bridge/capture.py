"""Reading frames from a camera's source: one reader per kind, each giving BGR frames or raising StreamError with
a fixed word (never the URL, its credentials or a library's text).

- RTSP, MJPEG over HTTP and local devices: OpenCV's ``VideoCapture`` with its FFmpeg backend (V4L2 for
  /dev/videoN), RTSP over TCP (``OPENCV_FFMPEG_CAPTURE_OPTIONS``), with open and read timeouts. Every frame of the
  stream is grabbed (a stream must be drained, or it lags), but only the frames the bridge looks at are converted.
- HTTP snapshot URLs: a GET per frame with the standard library (basic and digest authentication), decoded with
  OpenCV.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request

import cv2
import numpy as np

from . import sources

OPEN_TIMEOUT_MS = 8000
READ_TIMEOUT_MS = 5000
SNAPSHOT_TIMEOUT_S = 5.0
MAX_SNAPSHOT_BYTES = 20 * 1024 * 1024

# RTSP over TCP even where the process did not call quiet_opencv() first (a test, a script): read at each open.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")


class StreamError(Exception):
    """The source failed; ``word`` says how in a few fixed words."""

    def __init__(self, word: str):
        super().__init__(word)
        self.word = word


class Reader:
    """A source, opened; ``read()`` returns the next frame to look at (BGR) and its time (time.time()); with
    ``now=True`` the very next frame, whatever the sampling rate (a burst)."""

    def read(self, now: bool = False) -> tuple[np.ndarray, float]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class VideoReader(Reader):
    """A stream through OpenCV: every frame grabbed, one every ``1/fps`` s converted and returned."""

    def __init__(self, url: str, kind: str, fps: float):
        self.every = 1.0 / fps if fps > 0 else 0.0
        self.next_at = 0.0
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
        if kind == sources.DEVICE:
            self.cap = cv2.VideoCapture(int(url.removeprefix("/dev/video")), cv2.CAP_V4L2)
        else:
            self.cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        if not self.cap.isOpened():
            self.cap.release()
            raise StreamError("could not open the stream")

    def read(self, now: bool = False) -> tuple[np.ndarray, float]:
        while True:
            if not self.cap.grab():
                raise StreamError("the stream ended or stalled")
            at = time.monotonic()
            if now or at >= self.next_at:
                ok, frame = self.cap.retrieve()
                if not ok or frame is None:
                    raise StreamError("could not decode a frame")
                self.next_at = max(self.next_at + self.every, at) if self.next_at else at + self.every
                return frame, time.time()

    def close(self) -> None:
        self.cap.release()


class SnapshotReader(Reader):
    """An HTTP snapshot URL polled every ``1/fps`` s, with basic or digest authentication (whichever the camera
    asks for)."""

    def __init__(self, url: str, username: str, password: str, fps: float):
        self.url, self.every, self.next_at = url, 1.0 / fps if fps > 0 else 0.0, 0.0
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if username or password:
            passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
            passwords.add_password(None, url, username, password)
            handlers += [urllib.request.HTTPDigestAuthHandler(passwords),
                         urllib.request.HTTPBasicAuthHandler(passwords)]
        self.opener = urllib.request.build_opener(*handlers)
        self.read()  # fail now, as a stream that cannot open would

    def read(self, now: bool = False) -> tuple[np.ndarray, float]:
        wait = self.next_at - time.monotonic()
        if wait > 0 and not now:
            time.sleep(wait)
        self.next_at = time.monotonic() + self.every
        try:
            with self.opener.open(self.url, timeout=SNAPSHOT_TIMEOUT_S) as answer:
                data = answer.read(MAX_SNAPSHOT_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise StreamError(f"HTTP {exc.code}") from None
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise StreamError("timeout" if isinstance(reason, TimeoutError) or "timed out" in str(reason)
                              else "connection refused" if isinstance(reason, ConnectionRefusedError)
                              else "connection failed") from None
        if len(data) > MAX_SNAPSHOT_BYTES:
            raise StreamError("snapshot too large")
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise StreamError("not an image")
        return frame, time.time()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A camera's snapshot URL does not redirect; following one could carry its credentials elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def open_source(url: str, username: str, password: str, kind: str, fps: float) -> Reader:
    """Open a camera's source (``url`` without credentials; they come apart)."""
    if kind == sources.SNAPSHOT:
        return SnapshotReader(url, username, password, fps)
    return VideoReader(sources.with_credentials(url, username, password), kind, fps)
