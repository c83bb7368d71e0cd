"""The bridge as a whole: asks the web service for its cameras (and again every ``refresh`` seconds, so a camera
added, changed or removed in the console is picked up without a restart), runs one :class:`CameraLoop` per camera,
and reports every stream's status back every ``report`` seconds."""

from __future__ import annotations

import logging
import threading
import time

from faceaccess.http_client import http

from .camera import CameraConfig, CameraLoop

log = logging.getLogger("access.bridge")


class Bridge:
    def __init__(self, server: str, token: str, refresh: float = 5.0, report: float = 5.0):
        self.server, self.token = server.rstrip("/"), token
        self.refresh, self.report_every = refresh, report
        self.loops: dict[int, CameraLoop] = {}
        self.stopping = threading.Event()
        self.said: str = ""

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bridge {self.token}", "Content-Type": "application/json"}

    def fetch(self) -> list[CameraConfig] | None:
        answer = http("GET", f"{self.server}/api/v1/bridge/cameras/", headers=self.headers(), timeout=10)
        if answer.status != 200:
            why = ("the web service does not answer" if answer.status == 0 else
                   "wrong bridge token: give the bridge the web service's FACEACCESS_BRIDGE_TOKEN"
                   if answer.status in (401, 403) else f"HTTP {answer.status}")
            if why != self.said:
                log.warning("cannot read the cameras from %s: %s", self.server, why)
                self.said = why
            return None
        self.said = ""
        return [CameraConfig.from_api(row) for row in answer.data.get("cameras", [])]

    def apply(self, configs: list[CameraConfig]) -> None:
        """Start new cameras, restart changed ones, stop removed ones."""
        wanted = {c.id: c for c in configs}
        for camera_id, loop in list(self.loops.items()):
            if wanted.get(camera_id) != loop.config:
                loop.stop()
                del self.loops[camera_id]
                log.info("%s: %s", loop.config.label(), "changed" if camera_id in wanted else "stopped")
        for camera_id, config in wanted.items():
            if camera_id not in self.loops:
                loop = CameraLoop(config, self.server)
                self.loops[camera_id] = loop
                log.info("%s: starting (%s, %g frames/s)", config.label(), config.kind, config.fps)
                loop.start()

    def report(self) -> None:
        import json

        body = json.dumps({"cameras": [loop.status.report(i) for i, loop in self.loops.items()]}).encode()
        answer = http("POST", f"{self.server}/api/v1/bridge/status/", body, self.headers(), timeout=10)
        if answer.status != 200 and answer.status != 0:
            log.warning("the status report was refused: HTTP %s", answer.status)

    def run(self) -> None:
        next_fetch = next_report = 0.0
        log.info("camera bridge talking to %s", self.server)
        try:
            while not self.stopping.is_set():
                now = time.monotonic()
                if now >= next_fetch:
                    configs = self.fetch()
                    if configs is not None:
                        self.apply(configs)
                    next_fetch = now + (self.refresh if configs is not None else min(self.refresh, 3.0))
                if now >= next_report and self.loops:
                    self.report()
                    next_report = now + self.report_every
                self.stopping.wait(0.2)
        finally:
            for loop in self.loops.values():
                loop.stop()
            for loop in self.loops.values():
                loop.join(timeout=10)
            if self.loops:
                self.report()  # every stream now says disconnected

    def stop(self) -> None:
        self.stopping.set()
