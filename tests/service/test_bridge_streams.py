"""The camera bridge against real streams made here: an H.264 clip of a person walking in (LFW photos, Debian's
ffmpeg) served by GStreamer's RTSP server, and an HTTP camera whose snapshot URL asks for digest authentication.
The bridge runs as its own process (``python -m access.bridge``) against the live web server and a real worker with
the real engine: a face in the stream ends in a granted event, empty frames post nothing, a dropped stream
reconnects without posting the person again, and the stream's credentials appear in no API answer, no log line
and no audit entry."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from auditlog.models import LogEntry

from access.models import AccessEvent
from faceaccess.embedded import free_port
from tests.tools.streams import RtspServer, SnapshotServer, door, need_rtsp_tools, walkin_clip, with_face

from .conftest import FALLBACK_THRESHOLD, LFW_IMAGES, engine_missing_reason, site_threshold

MISSING = engine_missing_reason()
pytestmark = [
    pytest.mark.skipif(MISSING is not None, reason=MISSING or ""),
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.weights,
]
REPO = Path(__file__).resolve().parents[2]
PERSON, ENROLLED, PROBE = "Colin_Powell", (2, 3), 4
PASSWORD = "Cam-Pa55word!"


@pytest.fixture(autouse=True)
def bridge_token(settings) -> str:
    """The web service's bridge token (make run generates one; empty, no bridge is let in)."""
    settings.FACEACCESS_BRIDGE_TOKEN = "test-bridge-token-" + "x" * 16
    return settings.FACEACCESS_BRIDGE_TOKEN


def lfw(name: str, n: int) -> Path:
    return LFW_IMAGES / name / f"{name}_{n:04d}.jpg"


def wait_until(what, timeout: float, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(message() if callable(message) else message)


@pytest.fixture
def enrolled(celery_worker_process, owner_client):
    """A site, and the person enrolled from two LFW photos by the real worker."""
    import io

    threshold = site_threshold()
    site = owner_client.post("/api/v1/sites/", {"name": "Bridge"} | (
        {} if threshold else {"match_threshold": FALLBACK_THRESHOLD}), format="json").json()
    person = owner_client.post("/api/v1/people/", {"name": "Colin", "sites": [site["id"]]}, format="json").json()
    urls = []
    for n in ENROLLED:
        f = io.BytesIO(lfw(PERSON, n).read_bytes())
        f.name = f"{n}.jpg"
        urls.append(owner_client.post(f"/api/v1/people/{person['id']}/faces/", {"image": f},
                                      format="multipart")["Location"])
    wait_until(lambda: all(owner_client.get(u).json()["status"] == "enrolled" for u in urls), 180,
               lambda: celery_worker_process.log_text()[-3000:])
    return site, person


@pytest.fixture
def bridge(live_server, tmp_path, settings):
    """``python -m access.bridge`` against the live server; yields its log file."""
    from faceaccess.embedded.process import die_with_parent

    token = tmp_path / "bridge-token"
    token.write_text(settings.FACEACCESS_BRIDGE_TOKEN)
    log = tmp_path / "bridge.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "access.bridge", "--server", live_server.url, "--token-file",
                                 str(token), "--refresh", "1"], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent())
    yield log
    proc.terminate()
    proc.wait(20)


def status_of(owner_client, camera_id: int) -> dict:
    return owner_client.get(f"/api/v1/cameras/{camera_id}/").json()["stream_status"] or {}


def assert_no_leak(owner_client, camera_id: int, log: Path) -> None:
    texts = {"camera API": owner_client.get(f"/api/v1/cameras/{camera_id}/").content.decode(),
             "cameras API": owner_client.get("/api/v1/cameras/").content.decode(),
             "events API": owner_client.get(f"/api/v1/events/?camera={camera_id}").content.decode(),
             "bridge log": log.read_text(errors="replace"),
             "audit trail": str(list(LogEntry.objects.values_list("changes", flat=True)))}
    for where, text in texts.items():
        assert PASSWORD not in text and "Pa55word" not in text, f"the stream's password is in the {where}"


def test_a_person_walking_in_on_rtsp_is_granted_once_and_a_dropped_stream_reconnects(enrolled, owner_client, bridge,
                                                                                   tmp_path):
    need_rtsp_tools()
    site, person = enrolled
    clip = walkin_clip(tmp_path / "walkin.mp4", lfw(PERSON, PROBE), empty_s=2.0, face_s=12.0)
    rtsp = RtspServer(free_port(), {"door": clip}, tmp_path / "rtsp.log").start()
    try:
        answer = owner_client.post("/api/v1/cameras/", {
            "site": site["id"], "name": "front door", "stream_url": rtsp.url("door", f"viewer:{PASSWORD}"),
            "stream_fps": 5, "motion_threshold": 1.0, "grant_cooldown_seconds": 60}, format="json")
        assert answer.status_code == 201, answer.content
        camera = answer.json()["id"]
        granted = wait_until(lambda: AccessEvent.objects.filter(camera_id=camera, decision="granted").first(), 120,
                             lambda: bridge.read_text()[-3000:])
        assert granted.person_id == person["id"] and granted.idempotency_key.startswith(f"bridge-{camera}-")
        assert granted.captured_at is not None
        wait_until(lambda: status_of(owner_client, camera).get("connected"), 30, "the bridge never said connected")
        # The stream drops (the server dies) and comes back: the bridge says so and reconnects.
        rtsp.stop()
        down = wait_until(lambda: (s := status_of(owner_client, camera)) and not s["connected"] and s, 40,
                          lambda: bridge.read_text()[-2000:])
        assert down["last_error"]
        before = down["reconnects"]
        rtsp.start()
        wait_until(lambda: (s := status_of(owner_client, camera))["connected"] and s["reconnects"] > before, 60,
                   lambda: bridge.read_text()[-2000:])
        time.sleep(4)  # the clip plays again: the person is still in the cooldown
        events = AccessEvent.objects.filter(camera_id=camera)
        assert events.filter(decision="granted").count() == 1, list(events.values_list("decision", flat=True))
        keys = list(events.values_list("idempotency_key", flat=True))
        assert len(keys) == len(set(keys)) and len(keys) <= 6, keys  # a few posts per person, none twice
        assert_no_leak(owner_client, camera, bridge)
    finally:
        rtsp.stop()


def test_a_snapshot_url_behind_digest_auth_posts_only_once_somebody_comes(enrolled, owner_client, bridge):
    site, person = enrolled
    camera_http = SnapshotServer("admin", PASSWORD, auth="digest")
    try:
        answer = owner_client.post("/api/v1/cameras/", {
            "site": site["id"], "name": "side door", "stream_url": camera_http.url(), "stream_username": "admin",
            "stream_password": PASSWORD, "stream_fps": 4, "motion_threshold": 1.0}, format="json")
        assert answer.status_code == 201, answer.content
        camera = answer.json()["id"]
        wait_until(lambda: camera_http.requests >= 8, 60, lambda: bridge.read_text()[-2000:])
        assert not AccessEvent.objects.filter(camera_id=camera).exists()  # an empty door posts nothing
        camera_http.frame = with_face(door((640, 480)), lfw(PERSON, PROBE))
        granted = wait_until(lambda: AccessEvent.objects.filter(camera_id=camera, decision="granted").first(), 60,
                             lambda: bridge.read_text()[-3000:])
        assert granted.person_id == person["id"]
        wait_until(lambda: status_of(owner_client, camera).get("connected"), 30, "the bridge never said connected")
        assert_no_leak(owner_client, camera, bridge)
    finally:
        camera_http.close()


def test_a_wrong_snapshot_password_is_a_visible_error(enrolled, owner_client, bridge):
    site, _ = enrolled
    camera_http = SnapshotServer("admin", PASSWORD, auth="basic")
    try:
        camera = owner_client.post("/api/v1/cameras/", {
            "site": site["id"], "name": "back door", "stream_url": camera_http.url(auth="admin:wrong-one")},
            format="json").json()["id"]
        status = wait_until(lambda: (s := status_of(owner_client, camera)) and s.get("last_error") and s, 30,
                            lambda: bridge.read_text()[-2000:])
        assert (status["connected"], status["last_error"]) == (False, "HTTP 401")
        assert "wrong-one" not in bridge.read_text()
    finally:
        camera_http.close()


def test_an_mjpeg_stream_behind_basic_auth_is_read_and_decided(enrolled, owner_client, bridge):
    site, person = enrolled
    camera_http = SnapshotServer("viewer", PASSWORD, auth="basic", fps=10)
    try:
        camera = owner_client.post("/api/v1/cameras/", {
            "site": site["id"], "name": "lobby", "stream_url": camera_http.url("/mjpeg", f"viewer:{PASSWORD}"),
            "stream_kind": "mjpeg", "stream_fps": 5}, format="json").json()["id"]
        wait_until(lambda: status_of(owner_client, camera).get("connected"), 60, lambda: bridge.read_text()[-2000:])
        camera_http.frame = with_face(door((640, 480)), lfw(PERSON, PROBE))
        granted = wait_until(lambda: AccessEvent.objects.filter(camera_id=camera, decision="granted").first(), 60,
                             lambda: bridge.read_text()[-3000:])
        assert granted.person_id == person["id"]
        assert_no_leak(owner_client, camera, bridge)
    finally:
        camera_http.close()
