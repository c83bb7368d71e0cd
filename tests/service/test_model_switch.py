"""Switching the embedder (issue 11 part 3) with fake engines named like the registry's models, so the model
cards' thresholds (sface 0.998, facenet-irv1 0.765) are the real ones: the active model decides until the
target has embedded every photo, thresholds follow their model, failures wait for an admin, cancel keeps the
old model. The chunks are run in the test (``run_chunk(run, requeue=False)``) instead of by a worker."""

from __future__ import annotations

import datetime as dt

import pytest
from auditlog.models import LogEntry
from django.core.files.base import ContentFile
from django.utils import timezone

from access import model_switch
from access.models import AccessEvent, Site
from access.snapshots.processing import process_snapshot
from access.thresholds import threshold_for
from enrollment.embedding import embed_face_image
from enrollment.models import FaceEmbedding, FaceImage
from recognition import active
from recognition.engine import registry
from recognition.models import EmbedderState
from recognition.pipelines import current_embedder_name

from .conftest import FakePipeline, fake_face, hold_pipeline, image_bytes, make_camera, make_person, near, unit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]

OLD, NEW = registry.SFACE, registry.FACENET


@pytest.fixture(autouse=True)
def _fresh_cache():
    active.forget()
    yield
    active.forget()  # the next test must not see this one's active model from the cache


@pytest.fixture
def engines(settings, monkeypatch) -> dict[str, FakePipeline]:
    """Two fake engines posing as sface (active) and facenet-irv1; each answers its own faces per colour."""
    return {spec.name: hold_pipeline(monkeypatch,
                                     FakePipeline(spec.name, spec.version, default_threshold=spec.default_threshold),
                                     settings if spec is OLD else None)
            for spec in (OLD, NEW)}


def register(engines, color, old_vec, new_vec) -> bytes:
    engines[OLD.name].register(color, [fake_face(old_vec)] if old_vec is not None else [])
    return engines[NEW.name].register(color, [fake_face(new_vec)] if new_vec is not None else [])


def add_photo(person, data: bytes) -> FaceImage:
    image = FaceImage(person=person)
    image.image.save("p.png", ContentFile(data), save=False)
    image.save()
    assert embed_face_image(image.pk) == "enrolled"  # the worker's job, with the active model
    return image


def snapshot(camera, data: bytes) -> AccessEvent:
    event = AccessEvent(camera=camera.camera, site=camera.camera.site, received_at=timezone.now())
    event.snapshot.save("snap.png", ContentFile(data), save=False)
    event.save()
    process_snapshot(event.pk)
    event.refresh_from_db()
    return event


def run_to_end(limit: int = 50) -> list[str]:
    outcomes = []
    for _ in range(limit):
        outcomes.append(model_switch.run_chunk(EmbedderState.objects.get().run, requeue=False))
        if outcomes[-1] not in ("more", "waiting"):
            return outcomes
    raise AssertionError(f"the switch did not end: {outcomes}")


@pytest.fixture
def world(engines):
    sites = {"default": Site.objects.create(name="Default"), "custom": Site.objects.create(name="Custom",
                                                                                           match_threshold=0.9)}
    alice = make_person("Alice", sites.values())
    add_photo(alice, register(engines, (1, 0, 0), unit(1), unit(101)))
    add_photo(alice, register(engines, (2, 0, 0), near(unit(1), 0.3), near(unit(101), 0.3)))
    probe = register(engines, (3, 0, 0), near(unit(1), 0.6, seed=3), near(unit(101), 0.6, seed=3))
    stranger = register(engines, (4, 0, 0), unit(7), unit(107))
    return {"sites": sites, "alice": alice, "probe": probe, "stranger": stranger,
            "camera": make_camera(sites["default"]), "custom_camera": make_camera(sites["custom"], "side")}


def test_current_embedder_follows_the_row_not_the_setting(engines):
    assert current_embedder_name() == OLD.name  # nothing pinned: the setting
    assert active.pin_active() == OLD.name
    assert current_embedder_name() == OLD.name
    EmbedderState.objects.filter(pk=1).update(active_name=NEW.name)
    assert current_embedder_name() == OLD.name  # cached for a couple of seconds per process...
    active.forget()
    assert current_embedder_name() == NEW.name  # ...then the row wins over FACEACCESS_EMBEDDER


def test_a_site_threshold_is_never_applied_to_another_models_distances(engines):
    site = Site.objects.create(name="S", match_threshold=0.9)
    assert (site.threshold_model, threshold_for(site, OLD.name)) == (OLD.name, 0.9)
    assert threshold_for(site, NEW.name) == NEW.default_threshold  # the card's, not sface's 0.9
    site.other_thresholds = {NEW.name: 0.7}
    assert threshold_for(site, NEW.name) == 0.7


def test_the_worker_decides_with_the_threshold_of_the_model_it_matched(engines):
    site = Site.objects.create(name="S", match_threshold=0.5)  # sface's, far stricter than facenet's card
    person = make_person("Alice", [site])
    add_photo(person, register(engines, (1, 0, 0), unit(1), unit(101)))
    model_switch.start(NEW.name)
    assert run_to_end()[-1] == "switched"
    Site.objects.filter(pk=site.pk).update(threshold_model=OLD.name, match_threshold=0.5)  # as if never remapped
    event = snapshot(make_camera(site), register(engines, (3, 0, 0), None, near(unit(101), 0.6)))
    assert (event.model_name, event.threshold, event.decision) == (NEW.name, NEW.default_threshold, "granted")


def test_the_old_model_decides_until_every_photo_is_reembedded_then_thresholds_follow(world, engines):
    sites, alice = world["sites"], world["alice"]
    model_switch.start(NEW.name, by="admin")
    assert EmbedderState.objects.get().state == "reembedding"
    during = snapshot(world["camera"], world["probe"])
    assert (during.model_name, during.threshold, during.decision, during.person_id) == \
        (OLD.name, OLD.default_threshold, "granted", alice.pk)

    assert run_to_end()[-1] == "switched"
    row = EmbedderState.objects.get()
    assert (row.state, row.active_name, row.previous_name, row.total, row.done, row.failed) == \
        ("switched", NEW.name, OLD.name, 2, 2, 0)
    default, custom = (Site.objects.get(pk=s.pk) for s in sites.values())
    assert (default.match_threshold, default.threshold_model, default.other_thresholds, default.threshold_note) == \
        (NEW.default_threshold, NEW.name, {}, "")
    assert (custom.match_threshold, custom.threshold_model, custom.other_thresholds) == \
        (NEW.default_threshold, NEW.name, {OLD.name: 0.9})
    assert "threshold reset to facenet-irv1's default" in custom.threshold_note and "re-tune" in custom.threshold_note
    assert LogEntry.objects.filter(object_pk=str(custom.pk), changes__has_key="threshold_model").exists()

    after = snapshot(world["camera"], world["probe"])
    assert (after.model_name, after.threshold, after.decision, after.person_id) == \
        (NEW.name, NEW.default_threshold, "granted", alice.pk)
    assert snapshot(world["camera"], world["stranger"]).decision == "unknown"

    # Back to sface: nothing to embed again, the custom threshold comes back.
    before = FaceEmbedding.objects.filter(model_name=OLD.name).count()
    model_switch.start(OLD.name)
    assert run_to_end() == ["switched"]
    assert FaceEmbedding.objects.filter(model_name=OLD.name).count() == before
    custom.refresh_from_db()
    assert (custom.match_threshold, custom.threshold_model, custom.other_thresholds) == (0.9, OLD.name, {})
    assert "restored" in custom.threshold_note
    assert snapshot(world["custom_camera"], world["probe"]).threshold == 0.9


def test_failures_wait_for_an_admin_and_the_old_model_keeps_deciding(world, engines):
    bob = make_person("Bob", [world["sites"]["default"]])
    only = add_photo(bob, register(engines, (5, 0, 0), unit(5), None))  # the new model finds no face in it
    model_switch.start(NEW.name)
    assert run_to_end()[-1] == "ready"
    row = EmbedderState.objects.get()
    assert (row.state, row.active_name, row.total, row.done, row.failed) == ("ready", OLD.name, 3, 2, 1)
    assert row.failures == [{"image": only.pk, "person": bob.pk, "reason": "the new model found no usable face"}]
    assert [p.pk for p in model_switch.people_losing_their_last_photo(row.failures)] == [bob.pk]
    assert model_switch.status()["people_losing_last_photo"] == [{"id": bob.pk, "name": "Bob"}]
    assert snapshot(world["camera"], world["probe"]).model_name == OLD.name
    model_switch.confirm(by="admin")
    active.forget()
    assert (current_embedder_name(), EmbedderState.objects.get().state) == (NEW.name, "switched")


def test_cancel_leaves_the_old_model_active(world, engines):
    model_switch.start(NEW.name)
    EmbedderState.objects.filter(pk=1).update(extra={"chunk": 1})
    assert model_switch.run_chunk(EmbedderState.objects.get().run, requeue=False) == "more"
    model_switch.cancel(by="admin")
    assert run_to_end() == ["stopped"]
    active.forget()
    row = EmbedderState.objects.get()
    assert (row.state, row.active_name, current_embedder_name()) == ("cancelled", OLD.name, OLD.name)
    assert Site.objects.get(name="Custom").threshold_model == OLD.name
    assert snapshot(world["camera"], world["probe"]).model_name == OLD.name
    with pytest.raises(model_switch.SwitchError):
        model_switch.confirm()


def test_photos_added_during_the_run_get_the_target_embedding(world, engines):
    model_switch.start(NEW.name)
    EmbedderState.objects.filter(pk=1).update(extra={"chunk": 1})
    run = EmbedderState.objects.get().run
    assert model_switch.run_chunk(run, requeue=False) == "more"
    late = add_photo(world["alice"], register(engines, (6, 0, 0), near(unit(1), 0.2), near(unit(101), 0.2)))
    pending = FaceImage(person=world["alice"])
    pending.image.save("p.png", ContentFile(image_bytes((6, 0, 0))), save=False)
    pending.save()  # uploaded, not processed yet: the last pass waits for it
    outcomes = [model_switch.run_chunk(run, requeue=False) for _ in range(3)]
    assert outcomes == ["more", "more", "waiting"]
    assert embed_face_image(pending.pk) == "enrolled"  # the worker gets to it (with the active model)
    assert run_to_end()[-2:] == ["more", "switched"]
    for image in (late, pending):
        assert FaceEmbedding.objects.filter(face_image=image, model_name=NEW.name).exists()
    assert EmbedderState.objects.get().total == 4


def test_a_switch_cannot_start_twice_or_to_an_unknown_model(engines):
    with pytest.raises(model_switch.SwitchError) as unknown:
        model_switch.start("nonesuch")
    assert unknown.value.code == "unknown_model"
    with pytest.raises(model_switch.SwitchError) as same:
        model_switch.start(OLD.name)
    assert same.value.code == "already_active"
    model_switch.start(NEW.name)
    with pytest.raises(model_switch.SwitchError) as twice:
        model_switch.start(OLD.name)
    assert twice.value.code == "switch_in_progress"


def test_changing_the_setting_starts_a_switch_when_the_worker_starts(engines, settings,
                                                                     django_capture_on_commit_callbacks):
    assert model_switch.switch_on_worker_start() == "nothing to do"  # first start: pins sface
    settings.FACEACCESS_EMBEDDER = NEW.name
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert model_switch.switch_on_worker_start() == f"started a switch to {NEW.name}"
    row = EmbedderState.objects.get()
    assert (row.active_name, row.target_name, row.state, row.started_by) == \
        (OLD.name, NEW.name, "reembedding", "FACEACCESS_EMBEDDER")
    assert len(queued) == 1  # the first chunk
    active.forget()
    assert current_embedder_name() == OLD.name  # the setting names the target, the row the active model


def test_an_unsettled_photo_older_than_the_window_does_not_hold_the_switch(world, engines):
    stale = FaceImage(person=world["alice"])
    stale.image.save("p.png", ContentFile(image_bytes((9, 9, 9))), save=False)
    stale.save()
    FaceImage.objects.filter(pk=stale.pk).update(uploaded_at=timezone.now() - dt.timedelta(hours=1))
    model_switch.start(NEW.name)
    assert run_to_end()[-1] == "switched"


def test_the_api_starts_shows_and_cancels_a_switch(world, engines, staff):
    from rest_framework.test import APIClient

    admin = APIClient()
    admin.force_authenticate(staff.admin)
    response = admin.post("/api/v1/embedder/switch/", {"model": NEW.name}, format="json")
    assert response.status_code == 202, response.content
    assert (response.json()["state"], response.json()["target"]["name"], response.json()["total"]) == \
        ("reembedding", NEW.name, 2)
    assert admin.post("/api/v1/embedder/switch/", {"model": OLD.name}, format="json").json()["error"] == \
        "switch_in_progress"
    assert admin.post("/api/v1/embedder/confirm/").status_code == 409  # re-embedding, not waiting in 'ready'
    operator = APIClient()
    operator.force_authenticate(staff.operator)
    assert operator.post("/api/v1/embedder/confirm/").status_code == 403
    run_to_end()
    body = admin.get("/api/v1/embedder/").json()
    assert (body["active"]["name"], body["state"], body["done"], body["percent"]) == (NEW.name, "switched", 2, 100.0)
    custom = next(s for s in body["sites"] if s["name"] == "Custom")
    assert (custom["threshold"], custom["threshold_model"], custom["other_thresholds"]) == \
        (NEW.default_threshold, NEW.name, {OLD.name: 0.9})
    site = admin.get(f"/api/v1/sites/{world['sites']['custom'].pk}/").json()
    assert (site["threshold_model"], "re-tune" in site["threshold_note"]) == (NEW.name, True)
    assert admin.post("/api/v1/embedder/cancel/").json()["error"] == "no_switch"


def test_the_command_starts_reports_and_cancels(world, engines):
    import io

    from django.core.management import CommandError, call_command

    def run(*args) -> str:
        out = io.StringIO()
        call_command("switch_embedder", *args, stdout=out)
        return out.getvalue()

    assert "state: reembedding   target: facenet-irv1" in run(NEW.name)
    assert "photos: 0 of 2 re-embedded, 0 failed" in run("--status")
    assert "site Custom: 0.900 for sface" in run("--status")
    assert "cancelled by manage.py" in run("--cancel")
    with pytest.raises(CommandError, match="no_switch"):
        run("--cancel")


def test_the_models_page_shows_progress_failures_and_acts(world, engines, staff):
    from django.test import Client

    bob = make_person("Bob", [world["sites"]["default"]])
    add_photo(bob, register(engines, (5, 0, 0), unit(5), None))
    admin = Client()
    admin.force_login(staff.admin)
    page = admin.get("/models/").content.decode()
    assert 'data-active>sface<' in page and 'value="facenet-irv1"' in page and "Models" in page
    confirm = admin.post("/models/act/", {"action": "start", "model": NEW.name})
    html = confirm.content.decode()  # a switch asks first, with both models' measured accuracy
    assert confirm.status_code == 200 and 'data-gar="sface">92.8%' in html and 'data-gar="facenet-irv1">78.5%' in html
    assert "data-worse" in html and EmbedderState.objects.get().state != "reembedding"
    response = admin.post("/models/act/", {"action": "start", "model": NEW.name, "confirm": "1"})
    assert response.status_code == 302 and EmbedderState.objects.get().state == "reembedding"
    live = admin.get("/models/", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in live and "<html" not in live  # the polled partial, while re-embedding
    assert 'data-done>0<' in live and "of 3 photos" in live
    assert run_to_end()[-1] == "ready"
    page = admin.get("/models/").content.decode()
    assert 'hx-trigger' not in page and "Switch anyway" in page and "data-losing>Bob<" in page
    assert "the new model found no usable face" in page
    admin.post("/models/act/", {"action": "confirm"})
    page = admin.get("/models/").content.decode()
    assert 'data-active>facenet-irv1<' in page and "re-tune" in page  # the custom site's note
    threshold_page = admin.get(f"/sites/{world['sites']['custom'].pk}/threshold/").content.decode()
    assert "data-threshold-model>facenet-irv1<" in threshold_page and "sface 0.900" in threshold_page
    for who in ("operator", "auditor"):
        other = Client()
        other.force_login(getattr(staff, who))
        assert other.get("/models/").status_code == (200 if who == "auditor" else 403)  # auditors read it
        assert other.post("/models/act/", {"action": "cancel"}).status_code == 403


def test_faces_marked_not_a_person_keep_guarding_after_the_switch(world, engines):
    """A look-alike marked "not Alice" is re-detected in its snapshot and embedded by the new model; one whose
    snapshot retention deleted stays with the old model and is counted."""
    from access.models import ImpostorExample

    camera, alice = world["camera"], world["alice"]
    # The look-alike is nearer Alice's photos than the threshold under both models, and nearer still to itself.
    lookalike = register(engines, (5, 0, 0), near(unit(1), 0.5, seed=5), near(unit(101), 0.5, seed=5))
    gone = register(engines, (6, 0, 0), near(unit(1), 0.55, seed=6), near(unit(101), 0.55, seed=6))
    marked = []
    for data in (lookalike, gone):
        event = snapshot(camera, data)
        assert (event.decision, event.person_id) == ("granted", alice.pk)
        face = event.faces.get()
        ImpostorExample.objects.create(person=alice, event_face=face, embedding=face.embedding,
                                       model_name=OLD.name, model_version=OLD.version)
        marked.append(event)
    assert snapshot(camera, lookalike).decision == "unknown"  # the old model's example guards
    marked[1].snapshot.delete(save=True)  # retention took this one's snapshot

    model_switch.start(NEW.name)
    assert run_to_end()[-1] == "switched"
    assert model_switch.status()["impostors"] == {"impostors_reembedded": 1, "impostors_left": 1}
    (example,) = ImpostorExample.objects.filter(model_name=NEW.name)
    assert example.event_face_id == marked[0].faces.get().pk and example.person_id == alice.pk
    after = snapshot(camera, lookalike)
    assert (after.model_name, after.decision) == (NEW.name, "unknown")  # still guarded, by the new model's example
    assert "nearer a face marked" in after.faces.get().reason
    assert snapshot(camera, world["probe"]).decision == "granted"  # Alice herself is still let in


def test_photos_waiting_for_a_choice_are_looked_at_again_by_the_new_model(world, engines, eager_celery,
                                                                         django_capture_on_commit_callbacks):
    """A photo with several faces found by the old model gets its faces from the new model after the switch,
    so a person can still choose one of them."""
    bob = make_person("Bob", [world["sites"]["default"]])
    group = FaceImage(person=bob)
    engines[OLD.name].register((9, 0, 0), [fake_face(unit(20)), fake_face(unit(21))])
    data = engines[NEW.name].register((9, 0, 0), [fake_face(unit(120)), fake_face(unit(121))])
    group.image.save("group.png", ContentFile(data), save=False)
    group.save()
    assert embed_face_image(group.pk) == "several_faces"
    group.refresh_from_db()
    assert {c["model_name"] for c in group.candidates} == {OLD.name}

    model_switch.start(NEW.name)
    with django_capture_on_commit_callbacks(execute=True):  # the switch looks again once it is committed
        assert run_to_end()[-1] == "switched"
    group.refresh_from_db()
    assert group.status == "several_faces" and {c["model_name"] for c in group.candidates} == {NEW.name}
