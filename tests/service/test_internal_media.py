"""The web service's internal media endpoint (/internal/media/<name>) and the worker's storage over it.

Only the worker key opens it (not a user's token, not a session); a worker reads snapshots, photos and crops,
writes only crops, and cannot step outside MEDIA_ROOT.
"""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from .conftest import token_client

pytestmark = pytest.mark.django_db(transaction=True)
KEY = "test-worker-key-" + "x" * 24


@pytest.fixture
def worker_key(settings, media):
    settings.FACEACCESS_WORKER_KEY = KEY
    (media / "snapshots/2026/01/01").mkdir(parents=True)
    (media / "snapshots/2026/01/01/a.jpg").write_bytes(b"snapshot bytes")
    (media / "secret.txt").write_bytes(b"not for workers")
    return KEY


def _get(client, path: str, key: str | None = KEY, method: str = "get", **kwargs):
    headers = {"HTTP_AUTHORIZATION": f"Worker {key}"} if key else {}
    return getattr(client, method)(f"/internal/media/{path}", **headers, **kwargs)


def test_only_the_worker_key_opens_it(client, users, worker_key):
    assert _get(client, "snapshots/2026/01/01/a.jpg", key=None).status_code == 403
    assert _get(client, "snapshots/2026/01/01/a.jpg", key="wrong").status_code == 403
    admin = token_client(users.owner)  # an admin's API token is a user's credential, not a worker's
    assert admin.get("/internal/media/snapshots/2026/01/01/a.jpg").status_code == 403
    client.force_login(users.owner)
    assert _get(client, "snapshots/2026/01/01/a.jpg", key=None).status_code == 403
    answer = _get(client, "snapshots/2026/01/01/a.jpg")
    assert answer.status_code == 200 and b"".join(answer.streaming_content) == b"snapshot bytes"


def test_reads_stay_inside_the_stored_photos(client, worker_key):
    for name in ("secret.txt", "snapshots/../secret.txt", "snapshots/2026/../../secret.txt", "crops//x.png",
                 "snapshots/2026/01/01/missing.jpg"):
        assert _get(client, name).status_code == 404, name


def test_a_worker_writes_crops_only(client, media, worker_key):
    put = _get(client, "crops/1/c.png", method="put", data=b"png bytes", content_type="application/octet-stream")
    assert put.status_code == 201, put.content
    assert (media / put.json()["name"]).read_bytes() == b"png bytes"
    refused = _get(client, "faces/1/f.jpg", method="put", data=b"x", content_type="application/octet-stream")
    assert refused.status_code == 403 and not (media / "faces").exists()
    assert _get(client, put.json()["name"], method="delete").status_code == 204
    assert not (media / put.json()["name"]).exists()


def test_the_worker_storage_round_trip(live_server, settings, media, worker_key):
    from faceaccess.media_remote import MediaError, WebMediaStorage

    store = WebMediaStorage(base_url=live_server.url, key=KEY, timeout=5)
    assert store.open("snapshots/2026/01/01/a.jpg").read() == b"snapshot bytes"
    assert store.exists("snapshots/2026/01/01/a.jpg") and store.size("snapshots/2026/01/01/a.jpg") == 14
    name = store.save("crops/7/crop.png", ContentFile(b"crop"))
    assert (media / name).read_bytes() == b"crop"
    again = store.save("crops/7/crop.png", ContentFile(b"other"))  # a name taken: the web's store picks another
    assert again != name and (media / again).read_bytes() == b"other"
    store.delete(name)
    assert not (media / name).exists() and not store.exists(name)
    with pytest.raises(FileNotFoundError):
        store.open("snapshots/2026/01/01/missing.jpg")
    with pytest.raises(MediaError) as refused:
        WebMediaStorage(base_url=live_server.url, key="wrong", timeout=5).open("snapshots/2026/01/01/a.jpg")
    assert refused.value.status == 403
