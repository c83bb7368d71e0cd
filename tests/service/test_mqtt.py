"""MQTT out against a real broker (Debian's mosquitto): every decision published as JSON on the camera's topic,
Home Assistant discovery and availability retained, a grant pulsing the camera's lock topic; a broker that is down
leaves the decision alone and the delivery is retried, every attempt recorded on the event."""

from __future__ import annotations

import json

import pytest

from access.models import MqttDelivery
from faceaccess.embedded import free_port
from tests.tools.mosquitto import Broker, Subscriber

from .conftest import enroll_vector, fake_face, make_person, near, unit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery", "media")]


@pytest.fixture(autouse=True)
def bridge_token(settings) -> str:
    """The web service's bridge token (make run generates one; empty, no bridge is let in)."""
    settings.FACEACCESS_BRIDGE_TOKEN = "test-bridge-token-" + "x" * 16
    return settings.FACEACCESS_BRIDGE_TOKEN


@pytest.fixture
def broker(tmp_path, settings):
    b = Broker(tmp_path / "broker", free_port()).start()
    settings.FACEACCESS_MQTT_URL = b.url
    settings.FACEACCESS_MQTT_TIMEOUT = 3.0
    yield b
    b.stop()


@pytest.fixture
def alice(site):
    person = make_person("Alice", sites=[site])
    enroll_vector(person, unit(1))
    return person


def test_a_decision_is_published_with_discovery_availability_and_the_lock_pulse(fake_pipeline, camera, alice,
                                                                               broker):
    cam = camera.camera
    cam.mqtt_unlock_topic, cam.mqtt_unlock_payload, cam.mqtt_lock_payload = "cmnd/door/POWER", "ON", "OFF"
    cam.save()
    listener = Subscriber(broker.port, ["faceaccess/#", "homeassistant/#", "cmnd/#"])
    try:
        event = camera.decided(fake_pipeline.register((120, 0, 0), [fake_face(near(unit(1), 0.3, seed=1))]))
        (heard,) = listener.wait_for(f"faceaccess/camera/{cam.pk}/event")
        sent = json.loads(heard.payload)
        assert (sent["event"], sent["decision"], sent["event_type"], sent["person"], sent["person_name"]) == (
            event["id"], "granted", "granted", alice.pk, "Alice")
        assert sent["distance"] == pytest.approx(event["faces"][0]["distance"]) and sent["threshold"] == 0.9
        assert sent["event_url"].endswith(f"/events/{event['id']}/") and not heard.retain
        (config,) = listener.wait_for(f"homeassistant/event/faceaccess_camera_{cam.pk}/decision/config")
        entity = json.loads(config.payload)
        assert entity["state_topic"] == f"faceaccess/camera/{cam.pk}/event"
        assert set(entity["event_types"]) >= {"granted", "denied", "unknown"}
        assert entity["device"]["identifiers"] == [f"faceaccess_camera_{cam.pk}"]
        (sensor,) = listener.wait_for(f"homeassistant/sensor/faceaccess_camera_{cam.pk}/last_person/config")
        assert json.loads(sensor.payload)["state_topic"] == f"faceaccess/camera/{cam.pk}/last_person"
        assert listener.wait_for(f"faceaccess/camera/{cam.pk}/last_person")[0].payload == b"Alice"
        assert listener.wait_for(f"faceaccess/camera/{cam.pk}/availability")[0].payload == b"online"
        pulse = listener.wait_for("cmnd/door/POWER", count=2)
        assert [m.payload for m in pulse] == [b"ON", b"OFF"]
        (delivery,) = MqttDelivery.objects.filter(event_id=event["id"])
        assert delivery.delivered and delivery.attempt == 1 and delivery.messages >= 6
        assert camera.client().get(f"/api/v1/events/{event['id']}/").json()["mqtt_deliveries"][0]["delivered"]
    finally:
        listener.close()
    # Retained: a Home Assistant that subscribes later still finds the device and its availability.
    late = Subscriber(broker.port, ["homeassistant/#", f"faceaccess/camera/{cam.pk}/availability"])
    try:
        late.wait_for(f"homeassistant/event/faceaccess_camera_{cam.pk}/decision/config")
        assert late.wait_for(f"faceaccess/camera/{cam.pk}/availability")[0].retain
    finally:
        late.close()


def test_a_stranger_is_published_without_unlocking(fake_pipeline, camera, alice, broker):
    camera.camera.mqtt_unlock_topic = "cmnd/door/POWER"
    camera.camera.save()
    listener = Subscriber(broker.port, ["faceaccess/#", "cmnd/#"])
    try:
        event = camera.decided(fake_pipeline.register((121, 0, 0), [fake_face(unit(77))]))
        assert event["decision"] == "unknown"
        (heard,) = listener.wait_for(f"faceaccess/camera/{camera.camera.pk}/event")
        assert json.loads(heard.payload)["event_type"] == "unknown"
        assert listener.on("cmnd/door/POWER") == []
    finally:
        listener.close()


def test_broker_down_leaves_the_decision_alone_and_the_delivery_is_retried(fake_pipeline, camera, alice, settings,
                                                                         tmp_path, monkeypatch):
    from access.outputs import mqtt

    port = free_port()
    broker = Broker(tmp_path / "late-broker", port)
    settings.FACEACCESS_MQTT_URL, settings.FACEACCESS_MQTT_RETRIES = broker.url, 3
    real_publish, calls = mqtt.publish, []

    def publish_then_start_the_broker(messages):
        outcome = real_publish(messages)
        calls.append(outcome)
        if len(calls) == 1:
            broker.start()  # the broker comes back between the first attempt and its retry
        return outcome

    monkeypatch.setattr(mqtt, "publish", publish_then_start_the_broker)
    try:
        event = camera.decided(fake_pipeline.register((122, 0, 0), [fake_face(unit(1))]))
        assert event["decision"] == "granted" and event["person"] == alice.pk  # recognition did not wait
        attempts = list(MqttDelivery.objects.filter(event_id=event["id"]).values_list("attempt", "delivered",
                                                                                     "error"))
        assert attempts == [(1, False, "connection refused"), (2, True, "")]
    finally:
        broker.stop()


def test_a_broker_that_stays_down_is_given_up_after_the_retries(fake_pipeline, camera, alice, settings):
    settings.FACEACCESS_MQTT_URL, settings.FACEACCESS_MQTT_RETRIES = f"mqtt://127.0.0.1:{free_port()}", 2
    event = camera.decided(fake_pipeline.register((123, 0, 0), [fake_face(unit(1))]))
    assert event["decision"] == "granted"
    rows = list(MqttDelivery.objects.filter(event_id=event["id"]).values_list("attempt", "delivered"))
    assert rows == [(1, False), (2, False), (3, False)]


def test_the_brokers_password_is_used_and_never_shown(fake_pipeline, camera, alice, settings, tmp_path):
    broker = Broker(tmp_path / "auth-broker", free_port(), users={"faceaccess": "s3cret-mqtt-pw"}).start()
    try:
        camera.camera.debounce_seconds = 0  # the second grant is published too, not a repeat
        camera.camera.save()
        settings.FACEACCESS_MQTT_URL, settings.FACEACCESS_MQTT_RETRIES = broker.url, 0
        settings.FACEACCESS_MQTT_USERNAME, settings.FACEACCESS_MQTT_PASSWORD = "faceaccess", "wrong"
        refused = camera.decided(fake_pipeline.register((124, 0, 0), [fake_face(unit(1))]))
        (row,) = MqttDelivery.objects.filter(event_id=refused["id"])
        assert (row.delivered, row.error) == (False, "broker refused: not authorised")
        settings.FACEACCESS_MQTT_PASSWORD = "s3cret-mqtt-pw"
        listener = Subscriber(broker.port, ["faceaccess/#"], username="faceaccess", password="s3cret-mqtt-pw")
        try:
            ok = camera.decided(fake_pipeline.register((125, 0, 0), [fake_face(unit(1))]))
            listener.wait_for(f"faceaccess/camera/{camera.camera.pk}/event")
        finally:
            listener.close()
        for event in (refused, ok):
            assert "s3cret" not in camera.client().get(f"/api/v1/events/{event['id']}/").content.decode()
    finally:
        broker.stop()


def test_mqtt_is_off_unless_configured_and_runs_on_the_io_queue(fake_pipeline, camera, alice, settings):
    from faceaccess.celery import app

    settings.FACEACCESS_MQTT_URL = ""
    event = camera.decided(fake_pipeline.register((126, 0, 0), [fake_face(unit(1))]))
    assert not MqttDelivery.objects.filter(event_id=event["id"]).exists()
    for task in ("access.tasks.deliver_mqtt", "access.tasks.mqtt_relock", "access.tasks.publish_mqtt_availability"):
        assert app.amqp.router.route({}, task)["queue"].name == "celery"


def test_a_stream_going_down_and_back_is_announced_as_the_cameras_availability(camera, broker, settings):
    from rest_framework.test import APIClient

    camera.camera.stream_url = "rtsp://10.0.0.5/x"
    camera.camera.save()
    bridge = APIClient()
    bridge.credentials(HTTP_AUTHORIZATION=f"Bridge {settings.FACEACCESS_BRIDGE_TOKEN}")
    listener = Subscriber(broker.port, [f"faceaccess/camera/{camera.camera.pk}/availability"])
    topic = f"faceaccess/camera/{camera.camera.pk}/availability"
    try:
        for connected, count in ((True, 1), (True, 1), (False, 2), (True, 3)):  # only a change is announced
            report = {"cameras": [{"id": camera.camera.pk, "connected": connected, "fps": 5.0 if connected else 0}]}
            assert bridge.post("/api/v1/bridge/status/", report, format="json").status_code == 200
            heard = listener.wait_for(topic, count=count)
            assert heard[-1].payload == (b"online" if connected else b"offline")
        assert len(listener.on(topic)) == 3
    finally:
        listener.close()
