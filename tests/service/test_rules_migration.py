"""Migration access/0016 (access rules) keeps existing grants working unchanged: a person granted a site before it
is still granted there at any hour after it, with the grant's validity window, and sites and cameras keep checking
the face only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("access", "0014_camera_webhook_url_validator"), ("enrollment", "0003_liveness")]
AFTER = [("access", "0016_access_rules")]


@pytest.mark.django_db(transaction=True)
def test_grants_made_before_the_migration_still_let_in_at_any_time():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    site = old.get_model("access", "Site").objects.create(name="HQ", match_threshold=0.9, threshold_model="fake")
    camera = old.get_model("access", "Camera").objects.create(site=site, name="door", key_prefix="abcd1234",
                                                              key_hash="0" * 64)
    person_model = old.get_model("enrollment", "Person")
    always, window = person_model.objects.create(name="Ada"), person_model.objects.create(name="Bo")
    grant = old.get_model("access", "AccessGrant")
    grant.objects.create(site=site, person=always)
    until = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    grant.objects.create(site=site, person=window, valid_until=until)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # forward to the latest, as `migrate` does

    from access import decisions
    from access.decision_inputs import camera_rules, person_facts, site_rules
    from access.models import Camera, Site

    new_site, new_camera = Site.objects.get(pk=site.pk), Camera.objects.get(pk=camera.pk)
    assert (new_site.verification, new_camera.verification) == ("face", "")
    rules, door = site_rules(new_site, "fake"), camera_rules(new_camera)
    people = person_facts({always.pk, window.pk}, site_id=site.pk)
    face = decisions.FaceInput(0.99, 100.0, always.pk, 0.4)
    for hour in range(0, 24, 5):  # a Saturday, every few hours, day and night
        now = dt.datetime(2026, 12, 12, hour, 17, tzinfo=dt.UTC)
        assert decisions.decide([face], rules, door, people, now).decision == "granted"
    late = decisions.FaceInput(0.99, 100.0, window.pk, 0.4)
    assert decisions.decide([late], rules, door, people, until - dt.timedelta(hours=1)).decision == "granted"
    assert decisions.decide([late], rules, door, people, until + dt.timedelta(hours=1)).decision == "denied"
