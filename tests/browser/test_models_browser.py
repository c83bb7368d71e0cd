"""The Models page in a real browser: a switch waiting in 'ready' with a failed photo, its progress bar, the
person who would lose their last photo, the site thresholds per model; then "switch anyway"."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from .conftest import log_in, screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_the_models_page_shows_a_switch_waiting_for_an_admin(page, live_server, django_user_model):
    from access.models import Site
    from enrollment.models import FaceEmbedding, FaceImage, Person
    from faceaccess import roles
    from recognition.models import EmbedderState

    Site.objects.create(name="HQ")
    Site.objects.create(name="Lab", match_threshold=0.9)
    people = [Person.objects.create(name=n) for n in ("Ada Lovelace", "Bo Diddley")]
    images = [FaceImage.objects.create(person=p, image=f"faces/{p.pk}.jpg", status="enrolled") for p in people]
    for image in images[:1]:
        FaceEmbedding.objects.create(person=image.person, face_image=image, embedding=[0.0] * 127 + [1.0],
                                     model_name="facenet-irv1", model_version="keras-2024")
    EmbedderState.objects.create(
        pk=1, active_name="sface", active_version="2021dec", target_name="facenet-irv1", target_version="keras-2024",
        state="ready", run=1, total=2, done=1, failed=1, started_by="admin", started_at=timezone.now(),
        failures=[{"image": images[1].pk, "person": people[1].pk, "reason": "the new model found no usable face"}],
        message="1 photo(s) could not be embedded with facenet-irv1: switch anyway or cancel")

    admin = django_user_model.objects.create_user(f"admin-{uuid.uuid4().hex[:6]}", password="pw-browser-1")
    roles.set_role(admin, "admin")
    log_in(page, admin.username, "pw-browser-1")
    page.goto("/models/")
    assert page.inner_text("[data-switch-state]") == "ready"
    assert page.get_attribute("[data-progress]", "value") == "100.0"
    assert "Bo Diddley" in page.inner_text("[data-losing]")
    screenshot(page, "15-model-switch-ready")

    page.click("button[value=confirm]")
    page.wait_for_selector("[data-active]:text('facenet-irv1')")
    assert "re-tune" in page.inner_text("[data-note]")
    assert Site.objects.get(name="Lab").other_thresholds == {"sface": 0.9}
    screenshot(page, "16-model-switched")
