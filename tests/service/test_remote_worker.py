"""A worker that shares no folder with the web service (issue 19), on one machine.

The web service runs as `make run` starts it, with its own MEDIA_ROOT; each Celery worker gets an empty data dir
of its own, no MEDIA_ROOT, and only the database, the broker and the web service's URL with the worker key
(FACEACCESS_MEDIA_URL, FACEACCESS_WORKER_KEY). An enrollment photo and a door snapshot posted to the web service
are decided by that worker with the real engine; the face crop it makes lands in the web service's MEDIA_ROOT and
nothing lands in the worker's data dir. Killing the worker in the middle of a task loses nothing: a second worker
takes the task over. The same across two network namespaces: test_remote_worker_netns.py.
"""

from __future__ import annotations

import os
import secrets

import pytest

from tests.conftest import database_url_for, web_process

from .conftest import engine_missing_reason
from .scale_out import (
    OWN_REDIS_DB,
    VISIBILITY_S,
    Api,
    decided_by_a_worker_without_the_web_media,
    nothing_lost_when_a_worker_dies_mid_task,
    start_worker,
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


@pytest.fixture
def web_host(users, tmp_path):
    """The web service in a subprocess with its own MEDIA_ROOT, on the test database and its own broker db; and
    how to start a worker with nothing but the database, the broker and the web service's URL."""
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
    }
    _, token = AuthToken.objects.create(users.owner)
    with web_process(env, free_port(), tmp_path / "web.log", threads=8) as base:

        def start(name: str, **extra: str):
            worker = worker_env(env["DATABASE_URL"], env["REDIS_URL"], base, key, tmp_path / f"{name}-data",
                                FACEACCESS_VISIBILITY_TIMEOUT=str(VISIBILITY_S), **extra)
            return start_worker(worker, tmp_path / f"{name}.log", name)

        yield Api(base, token), start, media


def test_a_worker_without_the_web_media_decides_and_writes_back(web_host):
    api, start, media = web_host
    decided_by_a_worker_without_the_web_media(api, start, media)


def test_a_worker_killed_mid_task_loses_nothing(web_host):
    api, start, _ = web_host
    nothing_lost_when_a_worker_dies_mid_task(api, start)
