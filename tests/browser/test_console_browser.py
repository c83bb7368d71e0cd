"""The console in a real browser, on a live server with the real worker and engine: the flows an admin,
an operator and an auditor go through."""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.service.conftest import LFW_IMAGES, engine_missing_reason

from .conftest import log_in, screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Predicates are functions, not expression strings: Playwright evaluates a string with eval() in the page when
# it polls, which the console's Content-Security-Policy (no 'unsafe-eval') refuses.
PLOT_LOADED = "() => (img => img && img.complete && img.naturalWidth > 0)(document.querySelector('[data-plot]'))"
PERSON = "Colin_Powell"  # many LFW photos: two to enroll, one for the door
STRANGER = "George_W_Bush"


@pytest.fixture(autouse=True)
def _real_engine():
    why = engine_missing_reason()
    if why:
        pytest.skip(why)


def lfw(person: str, n: int) -> Path:
    return sorted((LFW_IMAGES / person).glob("*.jpg"))[n]


def make_user(django_user_model, role: str):
    from faceaccess import roles

    user = django_user_model.objects.create_user(f"{role}-{uuid.uuid4().hex[:6]}", password="pw-browser-1")
    roles.set_role(user, role)
    return user


def post_snapshot(base_url: str, key: str, photo: Path) -> dict:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"door.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + photo.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{base_url}/api/v1/snapshots/?wait=10", data=body, method="POST", headers={
        "Authorization": f"Api-Key {key}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_admin_sets_up_a_door_enrolls_a_person_and_tunes_the_threshold(
    page, live_server, celery_worker_process, django_user_model
):
    admin = make_user(django_user_model, "admin")
    log_in(page, admin.username, "pw-browser-1")
    screenshot(page, "01-dashboard-empty")

    # A site (threshold left empty: the model's own) and a camera, whose key is shown once.
    page.click("text=Sites & cameras")
    page.click("text=Add a site")
    page.fill("#id_name", "HQ")
    page.click("text=Save")
    page.click("text=Add a camera")
    page.fill("#id_name", "front door")
    page.click("text=Create and show the key")
    key = page.inner_text("[data-api-key]").strip()
    assert key.startswith("fa_")
    screenshot(page, "02-camera-key")

    # A person with two photos uploaded at once; both reach "enrolled" on the page by themselves.
    page.goto("/people/new/")
    page.fill("#id_name", "Colin Powell")
    page.check("text=HQ")
    page.click("text=Save")
    page.set_input_files("input[data-files]", [str(lfw(PERSON, 0)), str(lfw(PERSON, 1))])
    page.wait_for_function(
        "() => document.querySelectorAll('[data-status=enrolled]').length == 2", timeout=90_000)
    assert page.locator("[data-status] polygon").count() == 2  # the face box drawn on each photo
    screenshot(page, "03-person-enrolled")

    # The door: a third photo through the camera API is granted as this person ...
    answer = post_snapshot(live_server.url, key, lfw(PERSON, 2))
    assert (answer["decision"], answer["person_name"]) == ("granted", "Colin Powell"), answer
    # ... and shows in the log and on the dashboard.
    page.goto("/events/")
    row = page.locator(f"[data-event='{answer['id']}']")
    assert "granted" in row.inner_text() and "Colin Powell" in row.inner_text()
    row.locator("text=open").click()
    page.wait_for_selector(".shot svg polygon")
    assert "matched Colin Powell" in page.inner_text("main")
    screenshot(page, "04-event")
    page.goto("/")
    page.wait_for_selector(f"#live [data-event='{answer['id']}']")
    assert "Colin Powell" in page.inner_text("#live")
    assert page.locator("[data-count=granted] .n").inner_text() == "1"
    page.wait_for_selector("#worker .badge.ok")  # the worker answered its ping
    screenshot(page, "05-dashboard")

    # Review: "not Colin Powell" keeps that face from being let in as him the next time.
    page.goto(f"/events/{answer['id']}/")
    page.once("dialog", lambda dialog: dialog.accept())  # "not X" asks first
    page.click("[data-not-person]")
    assert "this is not Colin Powell" in page.inner_text(".messages")
    assert page.locator("[data-review=not_person]").count() == 1
    screenshot(page, "06-review")
    again = post_snapshot(live_server.url, key, lfw(PERSON, 2))
    assert again["decision"] == "unknown" and "marked 'not Colin Powell'" in again["reason"], again

    # A stranger who comes twice is one group on the strangers page.
    for n in (0, 1):
        assert post_snapshot(live_server.url, key, lfw(STRANGER, n))["decision"] == "unknown"
    page.click("nav >> text=Strangers")
    group = page.locator("[data-stranger-group]")
    assert group.count() == 1 and "Seen 2 times" in group.inner_text()
    screenshot(page, "07-strangers")

    # Threshold: at the site's own threshold nothing changes; far stricter, the grant would not be.
    page.click("text=Sites & cameras")
    page.click("text=Threshold…")
    page.wait_for_function(PLOT_LOADED)
    assert page.locator("[data-whatif-none]").count() == 1
    page.fill("[data-candidate]", "0.3")
    page.click("button:text-is('Show')")
    page.wait_for_function(PLOT_LOADED)
    changed = page.locator("[data-whatif] tr.changed")
    assert changed.count() == 1 and "unknown" in changed.inner_text()
    screenshot(page, "08-threshold-whatif")
    page.click("text=Save 0.300 as the threshold")
    assert "changed from 0.998 to 0.300" in page.inner_text(".messages")
    assert admin.username in page.inner_text("main")  # the change is recorded with who made it


def test_an_operator_cannot_tune_and_an_auditor_cannot_delete(page, live_server, django_user_model):
    from access.models import Site
    from enrollment.models import Person

    site = Site.objects.create(name="HQ", match_threshold=0.9)
    person = Person.objects.create(name="Ada")
    person.sites.add(site)

    operator = make_user(django_user_model, "operator")
    log_in(page, operator.username, "pw-browser-1")
    assert "Add a person" in page.goto("/people/").text()
    response = page.goto(f"/sites/{site.pk}/threshold/")
    assert response.status == 403 and "does not allow" in page.inner_text("main")
    screenshot(page, "09-operator-refused")
    page.context.clear_cookies()

    auditor = make_user(django_user_model, "auditor")
    log_in(page, auditor.username, "pw-browser-1")
    page.goto(f"/people/{person.pk}/")
    assert page.locator("text=Delete…").count() == 0 and page.locator("text=Add photos").count() == 0
    assert page.locator("nav >> text=People").count() == 1
    response = page.goto(f"/people/{person.pk}/delete/")
    assert response.status == 403
    # A forged POST from the auditor's own session is refused too.
    status = page.evaluate("""async (url) => {
        const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken='))?.split('=')[1] || '';
        const r = await fetch(url, {method: 'POST', headers: {'X-CSRFToken': token}});
        return r.status; }""", f"/people/{person.pk}/delete/")
    assert status == 403 and Person.objects.filter(pk=person.pk).exists()
    screenshot(page, "10-auditor-read-only")

    # On a phone: every page fits the screen's width (tables scroll inside their panel).
    page.set_viewport_size({"width": 390, "height": 844})
    for url in ("/", "/people/", f"/people/{person.pk}/", "/events/", "/sites/", "/strangers/"):
        page.goto(url)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (url, overflow)
    page.goto("/people/")
    screenshot(page, "12-phone-people")


def test_webcam_capture_uploads_a_photo_and_shows_why_it_is_unusable(
    page, live_server, celery_worker_process, django_user_model
):
    """Chromium's fake camera films a test pattern: the photo is taken, uploaded, processed by the real
    engine, and the reason it cannot be enrolled shows next to it."""
    from enrollment.models import Person

    person = Person.objects.create(name="Grace")
    operator = make_user(django_user_model, "operator")
    log_in(page, operator.username, "pw-browser-1")
    page.goto(f"/people/{person.pk}/")
    page.click("[data-webcam-start]")
    page.wait_for_function("() => document.querySelector('[data-webcam] video').videoWidth > 0")
    page.click("[data-webcam-shoot]")
    page.wait_for_selector("[data-status=no_face]", timeout=90_000)
    assert "no face found in the photo" in page.inner_text("[data-photos]")
    screenshot(page, "11-webcam-no-face")


def test_a_photo_with_two_faces_is_enrolled_by_picking_one(
    page, live_server, celery_worker_process, django_user_model, tmp_path
):
    """Two faces of the same size side by side: no face dominates, so the console shows both and the
    operator picks the left one."""
    from PIL import Image

    from enrollment.models import FaceEmbedding, Person

    pair = Image.new("RGB", (500, 250))
    pair.paste(Image.open(lfw(PERSON, 3)), (0, 0))
    pair.paste(Image.open(lfw(STRANGER, 2)), (250, 0))
    path = tmp_path / "two-faces.jpg"
    pair.save(path, quality=92)
    person = Person.objects.create(name="Colin Powell")
    operator = make_user(django_user_model, "operator")
    log_in(page, operator.username, "pw-browser-1")
    page.goto(f"/people/{person.pk}/")
    page.set_input_files("input[data-files]", [str(path)])
    page.wait_for_selector("[data-status=several_faces] [data-candidates]", timeout=90_000)
    assert page.locator("[data-candidates] polygon").count() == 2
    screenshot(page, "13-two-faces")
    left = next(b for b in page.locator("[data-choose]").all() if float(b.get_attribute("data-cx")) < 500)
    left.click()
    page.wait_for_selector("[data-status=enrolled]")
    assert "chosen by " + operator.username in page.inner_text("[data-choice]")
    embedding = FaceEmbedding.objects.get(person=person)
    assert embedding.face_image.chosen_face is not None
    screenshot(page, "14-face-picked")
