"""Issue 9, defect 4: eight requests racing with one idempotency key make one event, and every response but
the one that created it says ``Idempotent-Replayed: true``."""

from __future__ import annotations

import io
import threading
from unittest import mock

import pytest
from django.db import connection

from access.models import AccessEvent

from .conftest import image_bytes, media_files

pytestmark = pytest.mark.django_db(transaction=True)
SNAPSHOTS = "/api/v1/snapshots/"
RACERS = 8


def test_every_response_but_the_creator_says_replayed(camera, media):
    barrier = threading.Barrier(RACERS)
    responses = [None] * RACERS

    def racer(i: int) -> None:
        try:
            client = camera.client()
            f = io.BytesIO(image_bytes((i, i, i)))
            f.name = "snap.png"
            barrier.wait()
            responses[i] = client.post(SNAPSHOTS, {"image": f, "idempotency_key": "same"}, format="multipart")
        finally:
            connection.close()

    with mock.patch("access.snapshots.enqueue_snapshot"):
        threads = [threading.Thread(target=racer, args=(i,)) for i in range(RACERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert all(r is not None and r.status_code == 202 for r in responses), [getattr(r, "content", r) for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert AccessEvent.objects.count() == 1 and len(media_files(media)) == 1
    replayed = [r.get("Idempotent-Replayed") for r in responses]
    assert sorted(replayed, key=str) == [None] + ["true"] * (RACERS - 1), replayed
