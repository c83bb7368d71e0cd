"""The scriptable set-up: create_site, create_camera (key printed once), enroll_dir, reembed."""

from __future__ import annotations

import dataclasses
import io

import pytest
from django.core.management import CommandError, call_command

from access.models import Camera, Site
from enrollment.models import FaceEmbedding, FaceImage, Person

from .conftest import fake_face, unit

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_site(monkeypatch):
    from recognition.engine import registry

    name = registry.default_embedder_name()
    monkeypatch.setitem(registry.MODELS, name, dataclasses.replace(registry.get_spec(name), default_threshold=1.05))
    out, _ = run("create_site", "HQ", "--timezone", "Europe/Berlin")
    assert "threshold 1.050" in out
    assert Site.objects.get(name="HQ").match_threshold == 1.05
    with pytest.raises(CommandError, match="already exists"):
        run("create_site", "HQ")
    assert "exists" in run("create_site", "HQ", "--exist-ok")[0]
    with pytest.raises(CommandError, match="time zone"):
        run("create_site", "Moon", "--timezone", "Moon/Base", "--threshold", "1")
    with pytest.raises(CommandError, match="threshold"):
        run("create_site", "Far", "--threshold", "3")


def test_create_camera_prints_a_working_key_once(site):
    alice = Person.objects.create(name="Alice")
    out, _ = run("create_camera", "HQ", "Gate", "--allow", str(alice.pk))
    key = out.split("API key (shown once, store it in the camera now): ")[1].split()[0]
    camera = Camera.objects.get(name="Gate")
    assert Camera.from_key(key) == camera and key not in (camera.key_hash, camera.key_prefix)
    assert list(camera.allowed_people.all()) == [alice]
    only_key, _ = run("create_camera", str(site.pk), "Back", "--key-only")
    assert Camera.from_key(only_key.strip()).name == "Back"
    with pytest.raises(CommandError, match="already has"):
        run("create_camera", "HQ", "Gate")
    with pytest.raises(CommandError, match="no site"):
        run("create_camera", "Nowhere", "Gate")


def test_enroll_dir(site, fake_pipeline, tmp_path, media):
    from .conftest import image_bytes

    fake_pipeline.register((1, 1, 1), [fake_face(unit(1))])
    fake_pipeline.register((2, 2, 2), [fake_face(unit(2))])
    (tmp_path / "alice_1.png").write_bytes(image_bytes((1, 1, 1)))
    (tmp_path / "alice_2.png").write_bytes(image_bytes((2, 2, 2)))
    (tmp_path / "bob_x.png").write_bytes(image_bytes((3, 3, 3)))  # no face registered: no_face
    (tmp_path / "carol_1.jpg").write_bytes(b"not a photo")
    (tmp_path / "README.txt").write_text("ignored")
    out, err = run("enroll_dir", str(tmp_path), "--site", "HQ", "--sync")
    assert "3 images of 2 people: enrolled 2, no_face 1" in out
    assert "carol_1.jpg" in err and "bob" in err
    assert sorted(Person.objects.values_list("name", flat=True)) == ["alice", "bob"]
    assert set(Person.objects.get(name="alice").sites.all()) == {site}
    assert FaceEmbedding.objects.filter(person__name="alice").count() == 2
    # Running it again reuses the people.
    run("enroll_dir", str(tmp_path), "--site", "HQ", "--sync")
    assert Person.objects.count() == 2 and FaceImage.objects.count() == 6


def test_enroll_dir_refuses_a_missing_site_or_folder(site, tmp_path):
    with pytest.raises(CommandError, match="no site"):
        run("enroll_dir", str(tmp_path), "--site", "Nowhere")
    with pytest.raises(CommandError, match="no <name>_<anything>"):
        run("enroll_dir", str(tmp_path), "--site", "HQ")


def test_reembed_sync_with_prune(site, fake_pipeline, next_model, tmp_path, media):
    from .conftest import image_bytes

    fake_pipeline.register((1, 1, 1), [fake_face(unit(1))])
    (tmp_path / "alice_1.png").write_bytes(image_bytes((1, 1, 1)))
    run("enroll_dir", str(tmp_path), "--site", "HQ", "--sync")
    out, _ = run("reembed", "--model", "next", "--sync", "--prune")
    assert "embedded: 1" in out and "pruned 1" in out
    assert list(FaceEmbedding.objects.values_list("model_name", "model_version")) == [("next", "2")]
