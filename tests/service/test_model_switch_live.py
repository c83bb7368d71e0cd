"""A model switch that keeps deciding during re-embedding: real LFW photos, the real engine (sface -> facenet-irv1)
in a real Celery worker, snapshots through the camera API.

The test holds the switch's PostgreSQL advisory lock (access.model_switch.LOCK_KEY), so the worker's chunks find
it taken and try again later: the switch stays in 're-embedding' for as long as the test needs, with no sleep
standing in for synchronisation, and the worker stays free for door snapshots meanwhile.
"""

from __future__ import annotations

import io
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from access import model_switch
from enrollment.models import FaceEmbedding
from recognition.engine import registry
from recognition.models import EmbedderState

from .conftest import LFW_IMAGES, engine_missing_reason

MISSING = engine_missing_reason() or (
    None if registry.converted_path(registry.FACENET).is_file() else "facenet-irv1 weights not cached")
pytestmark = [
    pytest.mark.skipif(MISSING is not None, reason=MISSING or ""),
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.weights,
]

PEOPLE = {"Colin_Powell": ([2, 3], 4), "Tony_Blair": ([2, 3], 4)}  # enrolled photos, probe photo
STRANGER = ("AJ_Lamas", 1)
OLD, NEW = registry.SFACE, registry.FACENET


def photo(name: str, n: int) -> io.BytesIO:
    f = io.BytesIO((LFW_IMAGES / name / f"{name}_{n:04d}.jpg").read_bytes())
    f.name = f"{name}_{n:04d}.jpg"
    return f


def wait_for(what, worker, timeout_s: float = 180.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        worker.assert_alive()
        value = what()
        if value:
            return value
        time.sleep(0.2)  # polling a condition, not standing in for one
    raise AssertionError(f"timed out:\n{worker.log_text()[-3000:]}")


def wait_switched(worker) -> EmbedderState:
    return wait_for(lambda: EmbedderState.objects.filter(state__in=["switched", "ready", "failed"]).first(), worker)


def test_a_model_switch_keeps_deciding_during_reembedding(celery_worker_process, owner_client):
    site = owner_client.post("/api/v1/sites/", {"name": "Switch"}, format="json").json()
    cam = owner_client.post("/api/v1/cameras/", {"site": site["id"], "name": "door"}, format="json").json()
    ids, faces = {}, []
    for name, (enrolled, _) in PEOPLE.items():
        person = owner_client.post("/api/v1/people/", {"name": name, "sites": [site["id"]]}, format="json").json()
        ids[name] = person["id"]
        for n in enrolled:
            response = owner_client.post(f"/api/v1/people/{person['id']}/faces/", {"image": photo(name, n)},
                                         format="multipart")
            assert response.status_code == 202, response.content
            faces.append(response["Location"])
    statuses = wait_for(lambda: (lambda s: s if all(x not in ("pending", "processing") for x in s) else None)(
        [owner_client.get(url).json()["status"] for url in faces]), celery_worker_process)
    assert statuses == ["enrolled"] * 4

    camera = APIClient()
    camera.credentials(HTTP_AUTHORIZATION=f"Api-Key {cam['api_key']}")

    def door(name: str, n: int) -> dict:
        response = camera.post("/api/v1/snapshots/?wait=10", {"image": photo(name, n)}, format="multipart")
        assert response.status_code == 200, (response.content, celery_worker_process.log_text()[-3000:])
        return response.json()

    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", [model_switch.LOCK_KEY])
    try:
        model_switch.start(NEW.name, by="test")
        for name, (_, probe) in PEOPLE.items():  # re-embedding under way: sface decides, with sface's threshold
            body = door(name, probe)
            assert (body["decision"], body["person"], body["model_name"], body["threshold"]) == \
                ("granted", ids[name], OLD.name, OLD.default_threshold), body
        row = EmbedderState.objects.get()
        assert (row.state, row.active_name, row.total, row.done) == ("reembedding", OLD.name, 4, 0)
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [model_switch.LOCK_KEY])

    row = wait_switched(celery_worker_process)
    assert (row.state, row.active_name, row.done, row.failed) == ("switched", NEW.name, 4, 0), row.message
    assert FaceEmbedding.objects.filter(model_name=NEW.name).count() == 4
    for name, (_, probe) in PEOPLE.items():  # the same snapshots: facenet decides, with facenet's threshold
        body = door(name, probe)
        assert (body["decision"], body["person"], body["model_name"], body["threshold"]) == \
            ("granted", ids[name], NEW.name, NEW.default_threshold), body
    stranger = door(*STRANGER)
    assert (stranger["decision"], stranger["model_name"]) == ("unknown", NEW.name), stranger
    assert owner_client.get(f"/api/v1/sites/{site['id']}/").json()["match_threshold"] == NEW.default_threshold

    # Back to sface: its embeddings were kept, so nothing is embedded again and the switch is at once.
    kept = FaceEmbedding.objects.filter(model_name=OLD.name).count()
    model_switch.start(OLD.name, by="test")
    row = wait_for(lambda: EmbedderState.objects.filter(state="switched", active_name=OLD.name).first(),
                   celery_worker_process)
    assert FaceEmbedding.objects.filter(model_name=OLD.name).count() == kept == 4
    assert door(*next((n, p) for n, (_, p) in PEOPLE.items()))["model_name"] == OLD.name
