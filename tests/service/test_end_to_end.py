"""Real LFW photos through the API, Redis, a real Celery worker process and the real engine.

Two people are enrolled with two photos each; a third photo of each is granted as the right person
and a stranger is unknown. Skipped (with the reason) when the engine's weights cache or LFW is missing.
"""

from __future__ import annotations

import io
import time

import pytest

from .conftest import FALLBACK_THRESHOLD, LFW_IMAGES, engine_missing_reason, site_threshold

MISSING = engine_missing_reason()
pytestmark = [
    pytest.mark.skipif(MISSING is not None, reason=MISSING or ""),  # before the worker fixture starts
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.weights,
]

PEOPLE = {"Colin_Powell": ([2, 3], 4), "Tony_Blair": ([2, 3], 4)}  # enrolled photos, probe photo
STRANGER = ("AJ_Lamas", 1)  # one photo in LFW: never enrolled


def photo(name: str, n: int) -> io.BytesIO:
    f = io.BytesIO((LFW_IMAGES / name / f"{name}_{n:04d}.jpg").read_bytes())
    f.name = f"{name}_{n:04d}.jpg"
    return f


def test_two_people_granted_and_a_stranger_unknown(celery_worker_process, owner_client):
    threshold = site_threshold()
    site_body = {"name": "E2E"} | ({} if threshold else {"match_threshold": FALLBACK_THRESHOLD})
    site = owner_client.post("/api/v1/sites/", site_body, format="json").json()
    cam = owner_client.post("/api/v1/cameras/", {"site": site["id"], "name": "door"}, format="json").json()

    ids, face_urls = {}, []
    for name, (enrolled, _) in PEOPLE.items():
        person = owner_client.post("/api/v1/people/", {"name": name, "sites": [site["id"]]}, format="json").json()
        ids[name] = person["id"]
        for n in enrolled:
            response = owner_client.post(
                f"/api/v1/people/{person['id']}/faces/", {"image": photo(name, n)}, format="multipart"
            )
            assert response.status_code == 202, response.content
            face_urls.append(response["Location"])

    deadline = time.monotonic() + 180
    statuses = []
    while time.monotonic() < deadline:
        celery_worker_process.assert_alive()
        statuses = [owner_client.get(url).json() for url in face_urls]
        if all(s["status"] not in ("pending", "processing") for s in statuses):
            break
        time.sleep(0.5)
    assert [s["status"] for s in statuses] == ["enrolled"] * 4, (statuses, celery_worker_process.log_text()[-3000:])

    from rest_framework.test import APIClient

    camera = APIClient()
    camera.credentials(HTTP_AUTHORIZATION=f"Api-Key {cam['api_key']}")
    results = {}
    for name, n in [*((name, probe) for name, (_, probe) in PEOPLE.items()), STRANGER]:
        response = camera.post("/api/v1/snapshots/?wait=10", {"image": photo(name, n)}, format="multipart")
        assert response.status_code == 200, (name, response.content, celery_worker_process.log_text()[-3000:])
        results[name] = response.json()

    for name in PEOPLE:
        body = results[name]
        assert (body["decision"], body["person"]) == ("granted", ids[name]), body
        assert body["faces"][0]["distance"] <= body["threshold"]
        assert body["model_name"] and body["model_version"] and body["latency_ms"] > 0
    stranger = results[STRANGER[0]]
    assert (stranger["decision"], stranger["person"]) == ("unknown", None), stranger
    assert stranger["faces"] and stranger["faces"][0]["distance"] > stranger["threshold"]
