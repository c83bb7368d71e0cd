"""One camera in the bridge: a thread that keeps its source open (reconnecting with back-off), looks at its frames
at the camera's sampling rate, and when the door zone moves posts the sharpest frame of a short burst through the
camera intake, as the camera. After a grant it posts nothing for the camera's cooldown: the person is walking
through, and the server would only log repeats.

Every post carries a fresh idempotency key, reused only when the same frame is sent again (the server was
overloaded or did not answer), so a frame is never decided twice, also across a dropped stream.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

import cv2

from faceaccess.http_client import http, multipart

from . import sources
from .capture import Reader, StreamError, open_source
from .motion import MotionGate, best_frame

log = logging.getLogger("access.bridge")
BURST = 3  # frames looked at after motion; the sharpest is posted
WAIT_S = 5.0  # ?wait= for the decision
POST_TRIES = 3
UNGATED_EVERY_S = 1.0  # without a motion gate, at most one post a second
BACKOFF_MAX_S = 30.0


@dataclass(frozen=True)
class CameraConfig:
    """A camera as ``/api/v1/bridge/cameras/`` describes it."""

    id: int
    name: str
    source: str
    username: str
    password: str
    kind: str
    fps: float
    motion_threshold: float
    roi: tuple[float, ...] | None
    cooldown_seconds: float
    api_key: str

    @classmethod
    def from_api(cls, row: dict) -> CameraConfig:
        return cls(int(row["id"]), str(row["name"]), row["source"], row.get("username") or "",
                   row.get("password") or "", row["kind"], float(row["fps"]), float(row["motion_threshold"]),
                   tuple(row["roi"]) if row.get("roi") else None, float(row["cooldown_seconds"]), row["api_key"])

    def label(self) -> str:
        """How the log names the camera: never with its credentials."""
        return f"camera {self.id} ({self.name}, {sources.shown(self.source)})"


@dataclass
class Status:
    """What the bridge reports of a stream (``/api/v1/bridge/status/``)."""

    connected: bool = False
    last_error: str = ""
    last_frame_at: float | None = None
    reconnects: int = 0
    posted: int = 0
    frames: deque = field(default_factory=lambda: deque(maxlen=200))

    def fps(self) -> float:
        now = time.time()
        recent = [t for t in self.frames if now - t <= 10.0]
        if len(recent) < 2:
            return 0.0
        return round((len(recent) - 1) / max(recent[-1] - recent[0], 1e-3), 2)

    def report(self, camera_id: int) -> dict:
        last = (dt.datetime.fromtimestamp(self.last_frame_at, dt.UTC).isoformat()
                if self.last_frame_at is not None else None)
        return {"id": camera_id, "connected": self.connected, "fps": self.fps(), "last_error": self.last_error,
                "last_frame_at": last, "reconnects": self.reconnects, "posted": self.posted}


@dataclass
class Decision:
    event: int | None
    decision: str
    person: str | None
    posted_at: float
    decided_at: float
    frame_at: float


class CameraLoop(threading.Thread):
    def __init__(self, config: CameraConfig, server: str):
        super().__init__(name=f"bridge-camera-{config.id}", daemon=True)
        self.config, self.server = config, server.rstrip("/")
        self.status = Status()
        self.stopping = threading.Event()
        self.cooldown_until = 0.0
        self.next_post_at = 0.0
        self.decisions: list[Decision] = []  # for the benchmark and the tests

    def stop(self) -> None:
        self.stopping.set()

    # ------------------------------------------------------------------ the source, kept open -------------------
    def run(self) -> None:
        backoff, ever_connected = 1.0, False
        while not self.stopping.is_set():
            try:
                reader = open_source(self.config.source, self.config.username, self.config.password,
                                     self.config.kind, self.config.fps)
            except StreamError as exc:
                self._lost(exc.word, connected_before=False)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            if ever_connected:
                self.status.reconnects += 1
            ever_connected, backoff = True, 1.0
            self.status.connected, self.status.last_error = True, ""
            log.info("%s: connected", self.config.label())
            try:
                self.watch(reader)
            except StreamError as exc:
                self._lost(exc.word, connected_before=True)
            except Exception as exc:  # noqa: BLE001 - a bug or a library error must not end the camera's thread
                self._lost(f"error: {type(exc).__name__}", connected_before=True)
            finally:
                reader.close()
            if not self.stopping.is_set():
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
        self.status.connected = False

    def _lost(self, word: str, connected_before: bool) -> None:
        was = self.status.connected
        self.status.connected, self.status.last_error = False, word
        if was or not connected_before:
            log.warning("%s: %s", self.config.label(), word)

    # ------------------------------------------------------------------ frames -> posts ------------------------
    def watch(self, reader: Reader) -> None:
        gate = MotionGate(self.config.motion_threshold, list(self.config.roi) if self.config.roi else None)
        while not self.stopping.is_set():
            frame, at = self._read(reader)
            moved = gate.moved(frame)
            now = time.monotonic()
            if not moved or now < self.cooldown_until or now < self.next_post_at:
                continue
            burst, times = [frame], [at]
            for _ in range(BURST - 1):  # the stream's next frames, not the next sampled ones: no waiting
                more, more_at = self._read(reader, now=True)
                burst.append(more)
                times.append(more_at)
            gate.changed_percent(burst[-1])  # the next frame is compared with the burst's last
            best = best_frame(burst, list(self.config.roi) if self.config.roi else None)
            self.post(burst[best], times[0])
            if self.config.motion_threshold <= 0:
                self.next_post_at = time.monotonic() + UNGATED_EVERY_S

    def _read(self, reader: Reader, now: bool = False):
        frame, at = reader.read(now)
        self.status.last_frame_at = at
        self.status.frames.append(at)
        return frame, at

    def post(self, frame, frame_at: float) -> Decision | None:
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            return None
        key = f"bridge-{self.config.id}-{uuid.uuid4().hex}"
        captured = dt.datetime.fromtimestamp(frame_at, dt.UTC).isoformat()
        body, content_type = multipart({"idempotency_key": key, "captured_at": captured},
                                       {"image": ("frame.jpg", jpeg.tobytes(), "image/jpeg")})
        headers = {"Authorization": f"Api-Key {self.config.api_key}", "Content-Type": content_type}
        posted_at = time.time()
        answer = None
        for _ in range(POST_TRIES):
            answer = http("POST", f"{self.server}/api/v1/snapshots/?wait={WAIT_S:g}", body, headers,
                          timeout=WAIT_S + 10)
            if answer.status in (200, 202):
                break
            if answer.status in (0, 429, 503):  # the same frame again, with the same key, a moment later
                retry = answer.headers.get("retry-after") or answer.headers.get("Retry-After") or "1"
                self.stopping.wait(min(float(retry) if retry.replace(".", "", 1).isdigit() else 1.0, 10.0))
                continue
            break
        self.status.posted += 1
        if answer is None or answer.status not in (200, 202):
            log.warning("%s: snapshot refused: HTTP %s %s", self.config.label(), answer.status if answer else "-",
                        (answer.data or {}).get("error", "") if answer and isinstance(answer.data, dict) else "")
            return None
        data = answer.data if isinstance(answer.data, dict) else {}
        if answer.status == 202 and data.get("url"):  # not decided within ?wait: the cooldown needs the decision
            data = self._decided_later(data["url"], headers["Authorization"]) or data
        decision = Decision(data.get("id"), data.get("decision") or data.get("status") or "pending",
                            data.get("person_name"), posted_at, time.time(), frame_at)
        self.decisions.append(decision)
        if decision.decision == "granted":
            self.cooldown_until = time.monotonic() + self.config.cooldown_seconds
        log.info("%s: event %s %s%s, %.0f ms after the frame", self.config.label(), decision.event,
                 decision.decision, f" ({decision.person})" if decision.person else "",
                 (decision.decided_at - frame_at) * 1000.0)
        return decision

    def _decided_later(self, url: str, auth: str, patience_s: float = 20.0) -> dict | None:
        """The event once decided (a camera may read its own events), or None after ``patience_s``."""
        deadline = time.monotonic() + patience_s
        while time.monotonic() < deadline and not self.stopping.is_set():
            answer = http("GET", url, headers={"Authorization": auth}, timeout=5)
            if answer.status == 200 and isinstance(answer.data, dict) and answer.data.get("status") != "pending":
                return answer.data
            self.stopping.wait(0.3)
        return None
