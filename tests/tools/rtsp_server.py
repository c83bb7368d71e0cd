#!/usr/bin/python3
"""Serve H.264 MP4 files as RTSP streams with GStreamer's RTSP server (Debian: python3-gi,
gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-good/-bad). Run with Debian's python3, not the venv.

usage: /usr/bin/python3 rtsp_server.py PORT MOUNT=FILE.mp4 [MOUNT=FILE.mp4 ...]   -> rtsp://127.0.0.1:PORT/MOUNT

Each new client starts its file from the beginning (a person walking in again); the stream ends with the file.
When a stream starts playing the server prints ``PLAYING <mount> <time.time()>`` (the benchmark times the face's
first frame from it).
From ../shared/tools/rtsp_serve.py, with several mounts.
"""
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port, mounts = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
server = GstRtspServer.RTSPServer()
server.set_service(port)


def playing(mount):
    def on_state(media, state):
        if state == Gst.State.PLAYING:
            print(f"PLAYING {mount} {time.time():.3f}", flush=True)

    return lambda factory, media: media.connect("new-state", on_state)


for mount, path in mounts:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.connect("media-configure", playing(mount))
    factory.set_launch(f"( filesrc location={path} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 "
                       "config-interval=1 )")
    server.get_mount_points().add_factory(f"/{mount}", factory)
if server.attach(None) == 0:
    sys.exit(f"could not listen on port {port}")
print(f"serving on rtsp://127.0.0.1:{port}/", flush=True)
GLib.MainLoop().run()
