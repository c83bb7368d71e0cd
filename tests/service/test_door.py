"""Door integration: signed webhooks with retries recorded on the event, and debounced repeats."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from access.models import AccessEvent, WebhookDelivery
from faceaccess.http_client import RecordingReceiver

from .conftest import enroll_vector, fake_face, make_person, near, unit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery", "media")]


@pytest.fixture(autouse=True)
def receivers_on_this_machine(settings):
    """The test receivers listen on loopback, which webhooks may only reach when the installation allows it."""
    settings.FACEACCESS_WEBHOOK_ALLOW = ["127.0.0.1/32"]


@pytest.fixture
def receiver():
    r = RecordingReceiver(status=200)
    yield r
    r.close()


@pytest.fixture
def alice(site):
    person = make_person("Alice", sites=[site])
    enroll_vector(person, unit(1))
    return person


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """The README's verification snippet."""
    expected = "sha256=" + hmac.new(secret.encode(), headers["x-faceaccess-timestamp"].encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["x-faceaccess-signature"])


def test_a_decision_is_posted_signed_to_the_cameras_webhook(fake_pipeline, camera, alice, receiver):
    camera.camera.webhook_url = receiver.url
    camera.camera.save()
    event = camera.decided(fake_pipeline.register((100, 0, 0), [fake_face(near(unit(1), 0.3, seed=1))]))
    (got,) = receiver.requests
    headers, body = got.headers, got.body
    assert verify(camera.camera.webhook_secret, headers, body)
    sent = json.loads(body)
    assert (sent["event"], sent["decision"], sent["person"], sent["person_name"]) == (
        event["id"], "granted", alice.pk, "Alice")
    assert sent["distance"] == pytest.approx(event["faces"][0]["distance"]) and sent["threshold"] == 0.9
    assert not verify("another secret", headers, body)
    (delivery,) = WebhookDelivery.objects.filter(event_id=event["id"])
    assert delivery.delivered and delivery.status_code == 200 and delivery.attempt == 1


def test_a_failing_webhook_is_retried_and_every_attempt_recorded(fake_pipeline, camera, alice, settings):
    dead = RecordingReceiver(status=503)
    try:
        settings.FACEACCESS_WEBHOOK_RETRIES = 2
        camera.camera.webhook_url = dead.url
        camera.camera.save()
        event = camera.decided(fake_pipeline.register((101, 0, 0), [fake_face(unit(1))]))
        assert event["decision"] == "granted"  # the decision does not wait for the door
        attempts = list(WebhookDelivery.objects.filter(event_id=event["id"]).values_list("attempt", "status_code",
                                                                                             "delivered"))
        assert attempts == [(1, 503, False), (2, 503, False), (3, 503, False)]
        assert len(dead.requests) == 3
    finally:
        dead.close()


def test_the_same_person_again_within_the_window_is_a_repeat(fake_pipeline, camera, alice, receiver):
    camera.camera.webhook_url = receiver.url
    camera.camera.debounce_seconds = 30
    camera.camera.save()
    first = camera.decided(fake_pipeline.register((102, 0, 0), [fake_face(unit(1))]))
    again = camera.decided(fake_pipeline.register((103, 0, 0), [fake_face(near(unit(1), 0.1, seed=2))]))
    assert AccessEvent.objects.get(pk=again["id"]).repeat_of_id == first["id"]
    assert AccessEvent.objects.get(pk=first["id"]).repeat_of_id is None
    assert len(receiver.requests) == 1  # the door was told once
    camera.camera.debounce_seconds = 0
    camera.camera.save()
    third = camera.decided(fake_pipeline.register((104, 0, 0), [fake_face(unit(1))]))
    assert AccessEvent.objects.get(pk=third["id"]).repeat_of_id is None and len(receiver.requests) == 2


def test_webhooks_never_run_on_the_engines_queue():
    from faceaccess.celery import app

    assert app.amqp.router.route({}, "access.tasks.deliver_webhook")["queue"].name == "celery"
    assert app.amqp.router.route({}, "access.tasks.process_snapshot")["queue"].name == "gpu"


def test_the_api_and_the_console_show_the_deliveries_and_repeats(fake_pipeline, camera, alice, receiver, staff):
    from django.test import Client

    camera.camera.webhook_url = receiver.url
    camera.camera.save()
    first = camera.decided(fake_pipeline.register((105, 0, 0), [fake_face(unit(1))]))
    again = camera.decided(fake_pipeline.register((106, 0, 0), [fake_face(unit(1))]))
    assert first["webhook_deliveries"][0]["delivered"] is True and again["repeat_of"] == first["id"]
    client = Client()
    client.force_login(staff.auditor)
    assert "#1" in client.get(f"/events/{first['id']}/").content.decode()
    assert f"of <a href=\"/events/{first['id']}/\">event {first['id']}</a>" in client.get(
        f"/events/{again['id']}/").content.decode()


def test_a_redirect_is_not_followed_and_is_recorded_as_a_failure(fake_pipeline, camera, alice, receiver, settings):
    """Issue 17, item 4: a 302 was followed as a GET to another host and port, with the signature headers."""
    settings.FACEACCESS_WEBHOOK_RETRIES = 1
    bouncer = RecordingReceiver(status=302, headers={"Location": f"{receiver.url}/elsewhere?token=abc"})
    try:
        camera.camera.webhook_url = bouncer.url
        camera.camera.save()
        event = camera.decided(fake_pipeline.register((107, 0, 0), [fake_face(unit(1))]))
        assert len(bouncer.requests) == 2 and receiver.requests == []  # retried, never followed
        attempts = list(WebhookDelivery.objects.filter(event_id=event["id"]).values_list("status_code", "error",
                                                                                             "delivered"))
        shown = f"redirect refused: {receiver.url}/elsewhere"  # where to, without the query
        assert attempts == [(302, shown, False), (302, shown, False)]
    finally:
        bouncer.close()


def test_delivery_errors_are_fixed_words_not_the_receivers_text(fake_pipeline, camera, alice, settings, staff):
    """What event readers see of a failed delivery: never the receiver's body nor an exception's text."""
    from django.test import Client

    from faceaccess.embedded import free_port

    settings.FACEACCESS_WEBHOOK_RETRIES = 0
    leak = b"Traceback: psycopg.OperationalError password=hunter2 at db-internal:5432"
    broken = RecordingReceiver(status=500, body=leak)
    try:
        camera.camera.webhook_url = broken.url
        camera.camera.save()
        first = camera.decided(fake_pipeline.register((108, 0, 0), [fake_face(unit(1))]))
        camera.camera.webhook_url = f"http://127.0.0.1:{free_port()}/door"  # nothing listens there
        camera.camera.save()
        second = camera.decided(fake_pipeline.register((109, 0, 0), [fake_face(unit(2))]))
    finally:
        broken.close()
    assert [d["error"] for d in first["webhook_deliveries"]] == ["HTTP 500"]
    assert [d["error"] for d in second["webhook_deliveries"]] == ["connection refused"]
    client = Client()
    client.force_login(staff.auditor)
    for event in (first, second):
        page = client.get(f"/events/{event['id']}/").content.decode()
        assert "hunter2" not in page and "Errno" not in page and "Traceback" not in page
    secret = camera.camera.webhook_secret
    rows = " ".join(WebhookDelivery.objects.values_list("error", flat=True))
    assert secret not in rows and camera.key not in rows
