"""Erasing a person leaves no name and no photo of them anywhere; retention deletes old snapshots."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from access.models import AccessEvent, EventReview

from .conftest import fake_face, make_camera, media_files, near, unit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]
NAME = "Jennifer Keller"


def snapshot(camera, data: bytes) -> dict:
    return camera.decided(data)


def snapshots(media) -> list:
    return [p for p in media_files(media) if "snapshots" in p.parts]


def texts_naming(*words: str) -> list[str]:
    """Every row of every table whose text mentions one of ``words``."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                text = " ".join(str(v) for v in row)
                if any(w.lower() in text.lower() for w in words):
                    found.append(f"{table}: {text[:200]}")
    return found


@pytest.fixture
def jennifer(owner_client, fake_pipeline, site, media):
    """Enrolled through the API (two photos), edited once (an audit entry), seen twice at the door."""
    response = owner_client.post("/api/v1/people/", {"name": NAME, "sites": [site.pk]}, format="json")
    person_id = response.json()["id"]
    for color in ((81, 0, 0), (82, 0, 0)):
        photo = io.BytesIO(fake_pipeline.register(color, [fake_face(near(unit(81), 0.2, seed=color[0]))]))
        photo.name = "jk.png"
        assert owner_client.post(f"/api/v1/people/{person_id}/faces/", {"image": photo},
                                 format="multipart").status_code == 202
    owner_client.patch(f"/api/v1/people/{person_id}/", {"notes": f"{NAME}, night shift"}, format="json")
    camera = make_camera(site, "lobby")
    seen = [snapshot(camera, fake_pipeline.register((83 + i, 0, 0), [fake_face(near(unit(81), 0.3, seed=i))]))
            for i in range(2)]
    assert [s["person_name"] for s in seen] == [NAME, NAME] and NAME in seen[0]["reason"]
    stranger = snapshot(camera, fake_pipeline.register((90, 0, 0), [fake_face(unit(5))]))
    EventReview.objects.create(event_id=seen[0]["id"], verdict="confirmed", note=f"it was {NAME}")
    assert texts_naming("Jennifer", "Keller")  # the name is stored (person row, audit log, review note)
    return person_id, seen, stranger


def test_erase_with_history_leaves_no_name_and_no_photo(owner_client, jennifer, media):
    person_id, seen, stranger = jennifer
    response = owner_client.delete(f"/api/v1/people/{person_id}/?with_history=true")
    assert response.status_code == 204
    assert texts_naming("Jennifer", "Keller") == []
    # The log keeps its events, without the name; the snapshots she was recognised in are gone ...
    events = {e.pk: e for e in AccessEvent.objects.all()}
    assert set(events) == {seen[0]["id"], seen[1]["id"], stranger["id"]}
    assert not events[seen[0]["id"]].snapshot and not events[seen[1]["id"]].snapshot
    shown = owner_client.get(f"/api/v1/events/{seen[0]['id']}/").json()
    assert shown["reason"].startswith("matched erased person at") and shown["person_name"] is None
    # ... and the only file left under MEDIA_ROOT is the stranger's snapshot.
    assert [p.name for p in media_files(media)] == [events[stranger["id"]].snapshot.name.rsplit("/", 1)[-1]]


def test_erase_without_history_keeps_the_snapshots_but_not_the_name(owner_client, jennifer, media):
    person_id, seen, stranger = jennifer
    assert owner_client.delete(f"/api/v1/people/{person_id}/").status_code == 204
    assert texts_naming("Jennifer", "Keller") == []
    assert all(AccessEvent.objects.get(pk=s["id"]).snapshot for s in seen)
    assert len(media_files(media)) == 3  # three snapshots, no face photo


def test_retention_deletes_old_snapshots_per_site_window(fake_pipeline, site, camera, media):
    from .conftest import enroll_vector, make_person

    alice = make_person("Alice", sites=[site])
    enroll_vector(alice, unit(1))
    known = snapshot(camera, fake_pipeline.register((91, 0, 0), [fake_face(unit(1))]))
    unknown = snapshot(camera, fake_pipeline.register((92, 0, 0), [fake_face(unit(9))]))
    recent = snapshot(camera, fake_pipeline.register((93, 0, 0), [fake_face(unit(9))]))
    old = timezone.now() - dt.timedelta(days=8)
    AccessEvent.objects.filter(pk__in=[known["id"], unknown["id"]]).update(received_at=old)

    out = io.StringIO()
    call_command("apply_retention", "--dry-run", stdout=out)
    assert "HQ: would delete 1 snapshots (1 unknown, 0 recognised events)" in out.getvalue()
    assert len(snapshots(media)) == 3

    call_command("apply_retention", stdout=io.StringIO())
    events = {e.pk: e for e in AccessEvent.objects.prefetch_related("faces")}
    assert not events[unknown["id"]].snapshot and events[unknown["id"]].faces.get().embedding is None
    assert events[known["id"]].snapshot and events[recent["id"]].snapshot  # 8 days < 90; recent
    assert len(snapshots(media)) == 2 and len(events) == 3
    site.retain_known_days = 5
    site.save()
    call_command("apply_retention", stdout=io.StringIO())
    assert not AccessEvent.objects.get(pk=known["id"]).snapshot
