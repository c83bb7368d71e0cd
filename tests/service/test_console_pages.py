"""Console pages: every page answers, shows what the role may use and refuses what it may not."""

from __future__ import annotations

import pytest
from django.test import Client

from access.models import AccessEvent
from enrollment.models import FaceImage, Person

from .conftest import fake_face, image_bytes, make_person, unit

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    for url in ("/", "/people/", "/events/", "/sites/", "/people/new/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next="), url


def test_login_page_and_a_wrong_password(client, staff):
    assert client.get("/login/").status_code == 200
    response = client.post("/login/", {"username": "admin-user", "password": "wrong"})
    assert response.status_code == 200 and b"Please enter a correct username and password" in response.content
    response = client.post("/login/", {"username": "admin-user", "password": "pw-admin"})
    assert response.status_code == 302 and response["Location"] == "/"


@pytest.mark.parametrize("role", ["admin", "operator", "auditor"])
def test_every_role_reads_the_main_pages(staff, site, camera, role):
    alice = make_person("Alice", sites=[site])
    client = logged_in(getattr(staff, role))
    for url in ("/", "/dashboard/live/", "/people/", f"/people/{alice.pk}/", f"/people/{alice.pk}/photos/",
                "/events/", "/events.csv", "/sites/"):
        assert client.get(url).status_code == 200, (role, url)


def test_a_user_without_a_role_gets_nothing(staff, site):
    client = logged_in(staff.norole)
    for url in ("/", "/people/", "/events/", "/sites/"):
        assert client.get(url).status_code == 403, url


def test_the_menu_shows_what_the_role_may_use(staff, site):
    admin = logged_in(staff.admin).get("/sites/").content.decode()
    auditor = logged_in(staff.auditor).get("/sites/").content.decode()
    assert "Add a site" in admin and "Threshold…" in admin
    assert "Add a site" not in auditor and "Threshold…" not in auditor
    assert "Add a person" in logged_in(staff.operator).get("/people/").content.decode()
    assert "Add a person" not in logged_in(staff.auditor).get("/people/").content.decode()


def test_admins_tune_the_threshold_and_auditors_read_it(staff, site):
    url = f"/sites/{site.pk}/threshold/"
    assert 'name="threshold"' in logged_in(staff.admin).get(url).content.decode()
    assert logged_in(staff.operator).get(url).status_code == 403
    page = logged_in(staff.auditor).get(url)
    assert page.status_code == 200 and 'name="threshold"' not in page.content.decode()
    assert "data-read-only" in page.content.decode()


def test_an_auditor_cannot_change_or_delete_anything(staff, site, camera, media):
    alice = make_person("Alice", sites=[site])
    client = logged_in(staff.auditor)
    attempts = [
        ("/people/new/", {"name": "Mallory"}),
        (f"/people/{alice.pk}/edit/", {"name": "Eve"}),
        (f"/people/{alice.pk}/delete/", {}),
        (f"/people/{alice.pk}/upload/", {"image": _file(image_bytes())}),
        ("/sites/new/", {"name": "X"}),
        (f"/sites/{site.pk}/edit/", {"name": "Y"}),
        (f"/sites/{site.pk}/threshold/", {"threshold": "0.5"}),
        (f"/sites/{site.pk}/cameras/new/", {"name": "cam"}),
        (f"/cameras/{camera.camera.pk}/rotate/", {}),
        (f"/cameras/{camera.camera.pk}/revoke/", {}),
    ]
    for url, data in attempts:
        assert client.post(url, data).status_code == 403, url
    alice.refresh_from_db()
    site.refresh_from_db()
    assert alice.name == "Alice" and Person.objects.count() == 1 and FaceImage.objects.count() == 0
    assert site.match_threshold == 0.9 and camera.camera.__class__.objects.get().active


def _file(data: bytes, name: str = "face.png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/png")


def test_operator_creates_a_person_with_clear_validation(staff, site):
    client = logged_in(staff.operator)
    response = client.post("/people/new/", {"name": "", "active": "on"})
    assert response.status_code == 200 and b"This field is required" in response.content
    response = client.post("/people/new/", {"name": "Zoe", "active": "on", "sites": [site.pk],
                                            "valid_from": "2026-05-02T10:00", "valid_until": "2026-05-01T10:00"})
    assert b"must not be before" in response.content and not Person.objects.exists()
    response = client.post("/people/new/", {"name": "Zoe", "active": "on", "sites": [site.pk]})
    zoe = Person.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/people/{zoe.pk}/"
    assert list(zoe.sites.all()) == [site]


@pytest.mark.django_db(transaction=True)  # the embedding is queued on commit
def test_upload_several_photos_reports_each_bad_one(staff, site, fake_pipeline, eager_celery, media):
    alice = make_person("Alice", sites=[site])
    good = fake_pipeline.register((3, 3, 3), [fake_face(unit(1))])
    client = logged_in(staff.operator)
    response = client.post(f"/people/{alice.pk}/upload/",
                           {"image": [_file(good, "a.png"), _file(b"not a picture", "b.png")]},
                           HTTP_ACCEPT="application/json")
    body = response.json()
    assert response.status_code == 200 and len(body["stored"]) == 1
    assert body["errors"] == [{"file": "b.png", "error": "not_an_image",
                               "detail": "not an image (expected a JPEG, PNG or WebP picture)"}]
    page = client.get(f"/people/{alice.pk}/photos/").content.decode()
    assert "enrolled" in page and "every 2s" not in page  # settled: the grid stops polling


def test_unusable_photos_show_their_reason_and_keep_polling_while_pending(staff, site, media):
    alice = make_person("Alice", sites=[site])
    FaceImage.objects.create(person=alice, image="faces/x.png", status="no_face", reason="no face found in the photo")
    client = logged_in(staff.auditor)
    page = client.get(f"/people/{alice.pk}/photos/").content.decode()
    assert "no face found in the photo" in page and "every 2s" not in page
    FaceImage.objects.create(person=alice, image="faces/y.png")
    assert "every 2s" in client.get(f"/people/{alice.pk}/photos/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_delete_asks_first_and_says_what_is_erased(staff, site, fake_pipeline, eager_celery, media):
    alice = make_person("Alice", sites=[site])
    client = logged_in(staff.admin)
    photo = fake_pipeline.register((4, 4, 4), [fake_face(unit(2))])
    client.post(f"/people/{alice.pk}/upload/", {"image": _file(photo)})
    confirm = client.get(f"/people/{alice.pk}/delete/").content.decode()
    assert "1 photo</strong>" in confirm and "1 embedding</strong>" in confirm
    assert Person.objects.filter(pk=alice.pk).exists()
    client.post(f"/people/{alice.pk}/delete/")
    assert not Person.objects.filter(pk=alice.pk).exists()


def test_a_new_camera_shows_its_key_once(staff, site):
    client = logged_in(staff.admin)
    response = client.post(f"/sites/{site.pk}/cameras/new/", {"name": "lobby", "active": "on"})
    html = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    key = html.split('data-api-key>')[1].split("<")[0]
    assert key.startswith("fa_") and f"Api-Key {key}" in html and "/api/v1/snapshots/?wait=10" in html
    assert key not in client.get("/sites/").content.decode()  # never shown again
    from access.models import Camera

    assert Camera.from_key(key).name == "lobby"


def test_the_access_log_filters_and_exports_csv(staff, site, camera):
    bob = make_person("Bob", sites=[site])
    for decision, person in (("granted", bob), ("unknown", None), ("unknown", None)):
        AccessEvent.objects.create(camera=camera.camera, site=site, received_at="2026-05-01T10:00:00Z",
                                   status="done", decision=decision, person=person, reason=f"r-{decision}")
    client = logged_in(staff.auditor)
    page = client.get("/events/", {"decision": "unknown"}).content.decode()
    assert page.count("data-event=") == 2
    csv_text = b"".join(client.get("/events.csv", {"decision": "granted"}).streaming_content).decode()
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("id,received_at,site,camera") and len(lines) == 2 and "Bob" in lines[1]


def test_decision_words_read_as_words(staff, site, camera):
    AccessEvent.objects.create(camera=camera.camera, site=site, received_at="2026-05-01T10:00:00Z",
                               status="done", decision="no_face", reason="no face found")
    page = logged_in(staff.auditor).get("/events/").content.decode()
    assert 'class="badge no_face">no face</span>' in page and ">no_face<" not in page


def test_threshold_save_records_who_and_from_what(staff, site):
    client = logged_in(staff.admin)
    response = client.post(f"/sites/{site.pk}/threshold/", {"threshold": "0.85"})
    assert response.status_code == 302
    site.refresh_from_db()
    assert site.match_threshold == 0.85
    page = client.get(f"/sites/{site.pk}/threshold/").content.decode()
    assert "admin-user" in page and "0.9 → 0.85" in page
    bad = client.post(f"/sites/{site.pk}/threshold/", {"threshold": "7"}, follow=True).content.decode()
    assert "Not saved" in bad


def test_a_photo_nearer_another_person_than_the_threshold_is_flagged(staff, fake_pipeline, site):
    from .conftest import enroll_vector, near

    alice, bob = make_person("Alice", sites=[site]), make_person("Bob", sites=[site])
    enroll_vector(alice, unit(1))
    enroll_vector(bob, unit(2))
    client = logged_in(staff.auditor)
    assert "possibly the same person" not in client.get(f"/people/{alice.pk}/").content.decode()
    enroll_vector(alice, near(unit(2), 0.5, seed=4))  # this "Alice" photo is really Bob's face
    page = client.get(f"/people/{alice.pk}/").content.decode()
    assert "is 0.500 from Bob (threshold 0.900): possibly the same person" in page
