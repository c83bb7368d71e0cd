"""Imported by a test's worker (FACEACCESS_CELERY_IMPORTS=tests.service.slow_media): every fetch of a stored photo
from the web service is announced in the worker's log ("slow media: fetching <name>") and then takes a minute, so
that the test can kill the worker while it holds a task."""

from __future__ import annotations

import logging
import time

from faceaccess import media_remote

log = logging.getLogger("slow_media")
_fetch = media_remote.WebMediaStorage._open


def _slow_open(self, name: str, mode: str = "rb"):
    log.warning("slow media: fetching %s", name)
    time.sleep(60)
    return _fetch(self, name, mode)


media_remote.WebMediaStorage._open = _slow_open
