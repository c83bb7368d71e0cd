"""Two "hosts" for the scale-out tests: the web service with its own MEDIA_ROOT, and Celery workers that have
their own empty data dir and reach the web service only by URL (FACEACCESS_MEDIA_URL), plus the database and
the broker. Used by test_remote_worker.py (one machine) and test_remote_worker_netns.py (two network namespaces).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from faceaccess.http_client import Response, http, multipart

from .conftest import LFW_IMAGES

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 180.0
ENROLLED_PHOTO = ("Colin_Powell", 2)
PROBE_PHOTO = ("Colin_Powell", 4)  # another photo of the same man: granted once the first one is enrolled
OWN_REDIS_DB = 7  # the tests' own broker database: the session's worker (db 0) never takes their tasks


def photo(name: str, n: int) -> bytes:
    return (LFW_IMAGES / name / f"{name}_{n:04d}.jpg").read_bytes()


def engine_queues() -> str:
    """Every queue a task is routed to (an engine worker of the test consumes them all)."""
    from django.conf import settings

    return f"{settings.ENGINE_QUEUES},celery"  # the doors first (the broker takes queues in this order)


def with_host(url: str, host: str | None = None, db: int | None = None) -> str:
    """``url`` with another host (the port kept) and/or another database number (``/<db>``)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if host is not None:
        auth, _, hostport = netloc.rpartition("@")
        port = hostport.rsplit(":", 1)[1] if ":" in hostport else ""
        netloc = f"{auth + '@' if auth else ''}{host}{':' + port if port else ''}"
    path = parts.path if db is None else f"/{db}"
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def data_files(root: Path) -> list[str]:
    """Files under a data dir, except the generated secrets: a remote worker must have written none."""
    if not root.exists():
        return []
    files = (p.relative_to(root) for p in root.rglob("*") if p.is_file())
    return sorted(str(p) for p in files if p.parts[0] != "secrets")


@dataclass
class Worker:
    proc: subprocess.Popen
    log_path: Path
    data_dir: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL to the worker's whole process group (main process and pool child): the host is gone."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            assert self.alive(), f"worker exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}"
            assert time.monotonic() < deadline, f"no {text!r} in the worker's log:\n{self.log_text()[-4000:]}"
            time.sleep(0.2)


def worker_env(database_url: str, redis_url: str, media_url: str, worker_key: str, data_dir: Path,
               **extra: str) -> dict[str, str]:
    """A remote worker's whole environment: its own data dir, no MEDIA_ROOT, the web service's URL and key."""
    env = {k: v for k, v in os.environ.items() if k not in ("MEDIA_ROOT", "FACEACCESS_CELERY_IMPORTS")}
    env.update({
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "FACEACCESS_DATA_DIR": str(data_dir),
        "FACEACCESS_MEDIA_URL": media_url, "FACEACCESS_WORKER_KEY": worker_key,
        "FACEACCESS_PRELOAD_PIPELINE": "1", "DJANGO_SETTINGS_MODULE": "faceaccess.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        **extra,
    })
    return env


def start_worker(env: dict[str, str], log_path: Path, name: str, wrap: Sequence[str] = ()) -> Worker:
    """``celery worker`` (prefork, one process, every queue) with ``env``, run through ``wrap`` (e.g. ``ip netns
    exec``); returned once it says it is ready."""
    from faceaccess.embedded.process import die_with_parent

    argv = [*wrap, sys.executable, "-m", "celery", "-A", "faceaccess", "worker", "-Q", engine_queues(), "-c", "1",
            "-P", "prefork", "-l", "INFO", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"]
    Path(env["FACEACCESS_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent())
    worker = Worker(proc, log_path, Path(env["FACEACCESS_DATA_DIR"]))
    worker.wait_for_log(" ready.", READY_TIMEOUT_S)
    return worker


@dataclass
class Api:
    """The web service's API over HTTP, as an admin (token) and as a camera (key)."""

    base: str
    token: str

    def call(self, method: str, path: str, body: dict | None = None) -> Response:
        import json

        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Token {self.token}", **({"Content-Type": "application/json"} if data else {})}
        return http(method, f"{self.base}{path}", data, headers, timeout=30)

    def site_and_camera(self, threshold: float | None, deadline_s: int = 30) -> tuple[int, str]:
        body = {"name": "Scale-out", "decision_deadline_seconds": deadline_s}
        body |= {"match_threshold": threshold} if threshold else {}
        site = self.call("POST", "/api/v1/sites/", body)
        assert site.status == 201, site.text
        cam = self.call("POST", "/api/v1/cameras/", {"site": site.data["id"], "name": "door"})
        assert cam.status == 201, cam.text
        return site.data["id"], cam.data["api_key"]

    def person(self, name: str, site_id: int) -> int:
        made = self.call("POST", "/api/v1/people/", {"name": name, "sites": [site_id]})
        assert made.status == 201, made.text
        return made.data["id"]

    def upload_face(self, person_id: int, data: bytes) -> str:
        body, content_type = multipart({}, {"image": ("face.jpg", data)})
        answer = http("POST", f"{self.base}/api/v1/people/{person_id}/faces/", body,
                      {"Authorization": f"Token {self.token}", "Content-Type": content_type}, timeout=30)
        assert answer.status == 202, answer.text
        location = answer.headers.get("Location") or answer.headers.get("location")
        return location if location.startswith("http") else f"{self.base}{location}"

    def face(self, url: str) -> dict:
        answer = http("GET", url, None, {"Authorization": f"Token {self.token}"}, timeout=30)
        assert answer.status == 200, answer.text
        return answer.data

    def event(self, event_id: int) -> dict:
        answer = self.call("GET", f"/api/v1/events/{event_id}/")
        assert answer.status == 200, answer.text
        return answer.data

    def snapshot(self, camera_key: str, data: bytes, wait: float) -> Response:
        body, content_type = multipart({}, {"image": ("door.jpg", data)})
        return http("POST", f"{self.base}/api/v1/snapshots/?wait={wait:g}", body,
                    {"Authorization": f"Api-Key {camera_key}", "Content-Type": content_type}, timeout=wait + 30)


def wait_until(check, timeout: float, workers: Sequence[Worker] = (), what: str = "") -> object:
    """Poll ``check()`` until it returns something true; the workers' logs in the failure."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    logs = "\n".join(w.log_text()[-3000:] for w in workers)
    raise AssertionError(f"timed out waiting for {what}: {last!r}\n{logs}")


# ---------------------------------------------------------------- the two scenarios -------------------------

VISIBILITY_S = 8  # a killed worker's message goes to another worker this long after it was taken (test setting)


def _settled(api: Api, url: str) -> dict | None:
    face = api.face(url)
    return face if face["status"] not in ("pending", "processing") else None


def _threshold() -> float | None:
    from .conftest import FALLBACK_THRESHOLD, site_threshold

    return None if site_threshold() else FALLBACK_THRESHOLD


def decided_by_a_worker_without_the_web_media(api: Api, start, web_media: Path) -> Worker:
    """An enrollment photo, then a snapshot of the same man, posted to the web service and decided by the one
    worker ``start("remote")`` starts; its face crop is in ``web_media`` and the worker's data dir holds nothing."""
    from enrollment.models import FaceImage

    from .conftest import media_files

    worker = start("remote")
    try:
        site_id, camera_key = api.site_and_camera(_threshold())
        person = api.person("Colin Powell", site_id)
        face_url = api.upload_face(person, photo(*ENROLLED_PHOTO))
        face = wait_until(lambda: _settled(api, face_url), 120, [worker], "the enrollment photo")
        assert face["status"] == "enrolled", face
        answer = api.snapshot(camera_key, photo(*PROBE_PHOTO), wait=10)
        assert answer.status == 200, answer.text
        assert (answer.data["decision"], answer.data["person"]) == ("granted", person), answer.data
    finally:
        worker.stop()
    log = worker.log_text()
    assert "enrollment.tasks.embed_face_image[" in log and "access.tasks.process_snapshot[" in log, log[-3000:]
    crop = FaceImage.objects.get(person_id=person).crop.name
    assert crop.startswith("crops/") and (web_media / crop).is_file(), crop
    assert data_files(worker.data_dir) == []
    assert len(media_files(web_media)) == 3  # the photo, its crop, the snapshot
    return worker


def nothing_lost_when_a_worker_dies_mid_task(api: Api, start) -> None:
    """The worker ``start("doomed", ...)`` starts is SIGKILLed (its whole host gone) while it holds an enrollment
    photo's task, with a snapshot queued behind it; a worker started afterwards decides both."""
    # The doomed worker announces every fetch of a stored photo in its log and then takes a minute over it.
    doomed = start("doomed", FACEACCESS_CELERY_IMPORTS="tests.service.slow_media")
    site_id, camera_key = api.site_and_camera(_threshold(), deadline_s=0)  # 0: the queued snapshot never expires
    person = api.person("Colin Powell", site_id)
    face_url = api.upload_face(person, photo(*ENROLLED_PHOTO))
    doomed.wait_for_log("slow media: fetching faces/", 60)
    queued = api.snapshot(camera_key, photo(*PROBE_PHOTO), wait=0)
    assert queued.status == 202, queued.text
    doomed.kill()
    killed_at = time.monotonic()
    assert api.face(face_url)["status"] in ("pending", "processing")
    # The broker gives an unacknowledged message to another worker once it is VISIBILITY_S old; a worker that
    # starts looks for such messages at once.
    time.sleep(max(0.0, VISIBILITY_S + 1 - (time.monotonic() - killed_at)))
    survivor = start("survivor")
    try:
        face = wait_until(lambda: _settled(api, face_url), 120, [survivor], "the enrollment photo")
        assert face["status"] == "enrolled", face
        event = wait_until(lambda: (e := api.event(queued.data["id"]))["status"] != "pending" and e, 120,
                           [survivor], "the snapshot")
        assert event["status"] == "done" and event["decision"] in ("granted", "unknown"), event
    finally:
        survivor.stop()
    assert " succeeded in " not in doomed.log_text()  # it finished nothing: the survivor did all of it
    assert "enrollment.tasks.embed_face_image[" in survivor.log_text()
    assert data_files(doomed.data_dir) == [] and data_files(survivor.data_dir) == []
