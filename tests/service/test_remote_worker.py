"""A worker that shares no folder with the web service (issue 19), on one machine.

The web service runs as `make run` starts it, with its own MEDIA_ROOT; the Celery worker gets an empty data dir of
its own, no MEDIA_ROOT, and only the database, the broker and the web service's URL with the worker key
(FACEACCESS_MEDIA_URL, FACEACCESS_WORKER_KEY). An enrollment photo and a door snapshot posted to the web service
are decided by that worker with the real engine; the face crop it makes lands in the web service's MEDIA_ROOT and
nothing lands in the worker's data dir. Killing the worker in the middle of a task loses nothing: a second worker
takes the task over. The same with two network namespaces: test_remote_worker_netns.py.
"""

from __future__ import annotations

import os
import secrets
import time

import pytest

from tests.conftest import database_url_for, web_process

from .conftest import FALLBACK_THRESHOLD, engine_missing_reason, media_files, site_threshold
from .scale_out import (
    ENROLLED_PHOTO,
    OWN_REDIS_DB,
    PROBE_PHOTO,
    Api,
    data_files,
    photo,
    start_worker,
    wait_until,
    with_host,
    worker_env,
)

MISSING = engine_missing_reason()
pytestmark = [
    pytest.mark.skipif(MISSING is not None, reason=MISSING or ""),
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.weights,
]
VISIBILITY_S = 8  # a killed worker's message is handed to another worker this long after it was taken


@pytest.fixture
def web_host(users, tmp_path):
    """The web service in a subprocess with its own MEDIA_ROOT, on the test database and its own broker db."""
    from django.conf import settings
    from django.db import connection
    from knox.models import AuthToken

    from faceaccess.embedded import free_port

    key = secrets.token_urlsafe(32)
    media = tmp_path / "web-media"
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for(connection.settings_dict),
        "REDIS_URL": with_host(settings.CELERY_BROKER_URL, db=OWN_REDIS_DB),
        "MEDIA_ROOT": str(media), "FACEACCESS_DATA_DIR": str(tmp_path / "web-data"),
        "FACEACCESS_WORKER_KEY": key, "FACEACCESS_SNAPSHOT_RATE": "6000/min",
        "FACEACCESS_VISIBILITY_TIMEOUT": str(VISIBILITY_S),
    }
    _, token = AuthToken.objects.create(users.owner)
    with web_process(env, free_port(), tmp_path / "web.log", threads=8) as base:
        yield {"base": base, "key": key, "media": media, "env": env, "api": Api(base, token)}


def _worker(web_host, tmp_path, name: str, **extra: str):
    env = worker_env(web_host["env"]["DATABASE_URL"], web_host["env"]["REDIS_URL"], web_host["base"],
                     web_host["key"], tmp_path / f"{name}-data", FACEACCESS_VISIBILITY_TIMEOUT=str(VISIBILITY_S),
                     **extra)
    return start_worker(env, tmp_path / f"{name}.log", name)


def _settled(api: Api, url: str):
    face = api.face(url)
    return face if face["status"] not in ("pending", "processing") else None


def test_a_worker_without_the_web_media_decides_and_writes_back(web_host, tmp_path):
    api: Api = web_host["api"]
    worker = _worker(web_host, tmp_path, "remote")
    try:
        site_id, camera_key = api.site_and_camera(None if site_threshold() else FALLBACK_THRESHOLD)
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
    # The crop the worker made is in the web service's store, and the worker kept no file of its own.
    from enrollment.models import FaceImage

    crop = FaceImage.objects.get(person_id=person).crop.name
    assert crop.startswith("crops/") and (web_host["media"] / crop).is_file(), crop
    assert data_files(worker.data_dir) == []
    assert len(media_files(web_host["media"])) == 3  # the photo, its crop, the snapshot


def test_a_worker_killed_mid_task_loses_nothing(web_host, tmp_path):
    api: Api = web_host["api"]
    # The first worker announces every fetch of a stored photo in its log and then takes 60 s over it: it is
    # killed (the whole host gone: SIGKILL to every process) while it holds the enrollment photo's task.
    slow = _worker(web_host, tmp_path, "doomed", FACEACCESS_CELERY_IMPORTS="tests.service.slow_media")
    site_id, camera_key = api.site_and_camera(None if site_threshold() else FALLBACK_THRESHOLD, deadline_s=0)
    person = api.person("Colin Powell", site_id)
    face_url = api.upload_face(person, photo(*ENROLLED_PHOTO))
    slow.wait_for_log("slow media: fetching faces/", 60)
    queued = api.snapshot(camera_key, photo(*PROBE_PHOTO), wait=0)  # waits in the queue behind it
    assert queued.status == 202, queued.text
    slow.kill()
    taken_at = time.monotonic()
    assert api.face(face_url)["status"] in ("pending", "processing")

    # The broker hands an unacknowledged message to another worker once it is VISIBILITY_S old; a worker that
    # starts looks for such messages at once.
    time.sleep(max(0.0, VISIBILITY_S + 1 - (time.monotonic() - taken_at)))
    survivor = _worker(web_host, tmp_path, "survivor")
    try:
        face = wait_until(lambda: _settled(api, face_url), 120, [survivor], "the enrollment photo")
        assert face["status"] == "enrolled", face
        event = wait_until(lambda: (e := api.event(queued.data["id"]))["status"] != "pending" and e, 120,
                           [survivor], "the snapshot")
        assert event["status"] == "done" and event["decision"] in ("granted", "unknown"), event
    finally:
        survivor.stop()
    assert " succeeded in " not in slow.log_text()  # it finished nothing: the survivor did all of it
    assert "enrollment.tasks.embed_face_image[" in survivor.log_text()
    assert data_files(slow.data_dir) == [] and data_files(survivor.data_dir) == []
