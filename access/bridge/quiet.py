"""How the bridge's process sets OpenCV and FFmpeg up, before anything imports cv2 (OpenCV reads these once):
RTSP over TCP (UDP is lost through NAT and on busy Wi-Fi), and FFmpeg's and OpenCV's own logs silenced, because
their messages can quote the URL they opened, credentials included. The bridge's own log says what failed in a few
fixed words instead (:class:`access.bridge.capture.StreamError`)."""

from __future__ import annotations

import os


def quiet_opencv() -> None:
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "-8"  # AV_LOG_QUIET
    os.environ["OPENCV_LOG_LEVEL"] = "SILENT"
    os.environ["OPENCV_VIDEOIO_DEBUG"] = "0"
