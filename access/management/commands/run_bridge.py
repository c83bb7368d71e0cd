"""manage.py run_bridge [--server URL]: the camera bridge (access/bridge/), with the server and token from the
settings (FACEACCESS_BRIDGE_SERVER, FACEACCESS_BRIDGE_TOKEN). `make run` starts it; it waits quietly until a camera
has a stream."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from access.bridge.__main__ import run


class Command(BaseCommand):
    help = ("Read every active camera's stream (RTSP, HTTP snapshot, MJPEG, /dev/videoN), gate on motion and post "
            "the best frame of each burst through the camera intake. Runs until stopped.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--server", default=settings.FACEACCESS_BRIDGE_SERVER,
                            help="the web service (default: FACEACCESS_BRIDGE_SERVER)")
        parser.add_argument("--refresh", type=float, default=5.0, help="seconds between reads of the camera list")

    def handle(self, *args, server: str, refresh: float, **opts) -> None:
        if not settings.FACEACCESS_BRIDGE_TOKEN:
            raise CommandError("FACEACCESS_BRIDGE_TOKEN is not set: give the bridge and the web service the same "
                               "token (make run does; docker-compose: put it in .env)")
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            force=True)
        run(server, settings.FACEACCESS_BRIDGE_TOKEN, refresh)
