"""A snapshot that reaches the worker after its site's deadline ends 'expired' (logged, not decided)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from access.models import AccessEvent
from access.snapshots.processing import process_snapshot

from .conftest import fake_face, unit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media")]


def stored_event(camera, data: bytes, age_s: float) -> AccessEvent:
    event = AccessEvent(camera=camera.camera, site=camera.camera.site,
                        received_at=timezone.now() - dt.timedelta(seconds=age_s))
    event.snapshot.save("snap.png", ContentFile(data), save=False)
    event.save()
    return event


def test_a_snapshot_past_the_deadline_expires_without_the_engine(fake_pipeline, camera):
    data = fake_pipeline.register((120, 0, 0), [fake_face(unit(1))])
    late = stored_event(camera, data, age_s=45)
    assert process_snapshot(late.pk) == "expired"
    late.refresh_from_db()
    assert (late.status, late.decision) == ("expired", "") and "past the site's deadline of 30 s" in late.reason
    assert fake_pipeline.calls == 0
    on_time = stored_event(camera, data, age_s=5)
    assert process_snapshot(on_time.pk) == "unknown" and fake_pipeline.calls == 1


def test_a_deadline_of_zero_never_expires(fake_pipeline, camera):
    site = camera.camera.site
    site.decision_deadline_seconds = 0
    site.save()
    old = stored_event(camera, fake_pipeline.register((121, 0, 0), []), age_s=3600)
    assert process_snapshot(old.pk) == "no_face"
