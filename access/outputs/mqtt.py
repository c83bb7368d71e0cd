"""MQTT out: every decided event (that is not a repeat, like webhooks: :mod:`access.outputs.door`) published to a
broker, with Home Assistant discovery, and an optional lock driven directly on a grant.

Off unless ``FACEACCESS_MQTT_URL`` is set. Per camera ``<prefix>/camera/<id>/``:

- ``event``: the decision as JSON (the webhook's fields, ``event_type`` for Home Assistant's event entity, the
  event's console URL), QoS 1, not retained;
- ``last_person``: the name of the last person granted, retained (a Home Assistant sensor);
- ``availability``: ``online`` / ``offline``, retained (a camera is online while active and, when the camera
  bridge reads its stream, while the stream is connected);
- with ``mqtt_unlock_topic``: on a grant, ``mqtt_unlock_payload`` there, and after ``mqtt_pulse_seconds``
  ``mqtt_lock_payload`` (a Shelly / Tasmota relay, a Zigbee2MQTT lock).

Home Assistant discovery (retained, under ``FACEACCESS_MQTT_DISCOVERY_PREFIX``): each camera is a device with an
``event`` entity (granted / denied / unknown / no_face) and a ``sensor`` for the last person, republished with
every delivery so that a Home Assistant started later still finds them.

Delivery is at-least-once: QoS 1, every message acknowledged by the broker (PUBACK) within
``FACEACCESS_MQTT_TIMEOUT`` or the whole attempt is retried with back-off by the ``deliver_mqtt`` task on the I/O
worker (never on the engine's queue), up to ``FACEACCESS_MQTT_RETRIES``. Every attempt is recorded on the event
(MqttDelivery) with one of a few fixed words on failure, never the broker's account or an exception's text.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from django.conf import settings

from ..models import AccessEvent, Camera, MqttDelivery, StreamStatus, faces_without_vectors
from .webhooks import payload as webhook_payload

log = logging.getLogger(__name__)
DELIVER_MQTT = "access.tasks.deliver_mqtt"  # the Celery tasks (access.tasks), queued by name
MQTT_RELOCK = "access.tasks.mqtt_relock"
PUBLISH_AVAILABILITY = "access.tasks.publish_mqtt_availability"
EVENT_TYPES = ["granted", "denied", "unknown", "no_face"]


class Failed(Exception):
    """An attempt failed; ``reason`` is one of a few fixed words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Message:
    topic: str
    payload: str
    retain: bool = False


def enabled() -> bool:
    return bool(settings.FACEACCESS_MQTT_URL)


def camera_topic(camera_id: int, leaf: str) -> str:
    return f"{settings.FACEACCESS_MQTT_TOPIC_PREFIX}/camera/{camera_id}/{leaf}"


# ---------------------------------------------------------------- what is published -------------------------------

def event_payload(event: AccessEvent) -> dict:
    body = webhook_payload(event)
    body["event_type"] = event.decision  # Home Assistant's event entity reads this key
    body["event_url"] = f"{settings.FACEACCESS_PUBLIC_URL}/events/{event.pk}/"
    return body


def discovery_messages(camera: Camera) -> list[Message]:
    """Home Assistant MQTT discovery for one camera: a device with an event entity and a last-person sensor."""
    prefix = settings.FACEACCESS_MQTT_DISCOVERY_PREFIX
    if not prefix:
        return []
    node = f"faceaccess_camera_{camera.pk}"
    device = {"identifiers": [node], "name": f"FaceAccess {camera.name}", "manufacturer": "FaceAccess",
              "model": "door camera"}
    availability = {"availability_topic": camera_topic(camera.pk, "availability")}
    event = {"name": "Decision", "unique_id": f"{node}_decision", "object_id": f"{node}_decision",
             "state_topic": camera_topic(camera.pk, "event"), "event_types": EVENT_TYPES, "device_class": None,
             "json_attributes_topic": camera_topic(camera.pk, "event"), "device": device, **availability}
    event = {k: v for k, v in event.items() if v is not None}
    sensor = {"name": "Last person", "unique_id": f"{node}_last_person", "object_id": f"{node}_last_person",
              "state_topic": camera_topic(camera.pk, "last_person"), "icon": "mdi:account", "device": device,
              **availability}
    return [Message(f"{prefix}/event/{node}/decision/config", _json(event), retain=True),
            Message(f"{prefix}/sensor/{node}/last_person/config", _json(sensor), retain=True)]


def availability_message(camera: Camera, online: bool) -> Message:
    return Message(camera_topic(camera.pk, "availability"), "online" if online else "offline", retain=True)


def camera_online(camera: Camera) -> bool:
    """Active, and when the bridge reads its stream, the stream connected."""
    if not camera.active:
        return False
    if not camera.stream_url:
        return True
    try:
        return camera.stream_status.connected
    except StreamStatus.DoesNotExist:
        return False


def event_messages(event: AccessEvent) -> list[Message]:
    camera = event.camera
    messages = [*discovery_messages(camera), availability_message(camera, camera_online(camera)),
                Message(camera_topic(camera.pk, "event"), _json(event_payload(event)))]
    if event.decision == "granted":
        if event.person is not None:
            messages.append(Message(camera_topic(camera.pk, "last_person"), event.person.name, retain=True))
        if camera.mqtt_unlock_topic:
            messages.append(Message(camera.mqtt_unlock_topic, camera.mqtt_unlock_payload))
    return messages


def _json(body: dict) -> str:
    return json.dumps(body, separators=(",", ":"))


# ---------------------------------------------------------------- deliveries --------------------------------------

def deliver(event_id: int, attempt: int) -> str:
    """One attempt to publish the event: "delivered", "gone" (nothing to publish any more, or MQTT is off),
    "retry", or "given up" (the last attempt failed)."""
    if not enabled():
        return "gone"
    event = (AccessEvent.objects.select_related("camera", "camera__stream_status", "person")
             .prefetch_related(faces_without_vectors()).filter(pk=event_id).first())
    if event is None or event.camera is None:
        return "gone"
    messages = event_messages(event)
    outcome = publish(messages)
    MqttDelivery.objects.create(event=event, attempt=attempt, **outcome)
    if outcome["delivered"]:
        camera = event.camera
        if event.decision == "granted" and camera.mqtt_unlock_topic and camera.mqtt_lock_payload \
                and camera.mqtt_pulse_seconds > 0:
            _queue(MQTT_RELOCK, camera.pk, countdown=camera.mqtt_pulse_seconds)
        return "delivered"
    return "given up" if attempt > settings.FACEACCESS_MQTT_RETRIES else "retry"


def relock(camera_id: int) -> bool:
    """The end of an unlock pulse: the lock payload on the camera's unlock topic. True once the broker has it."""
    camera = Camera.objects.filter(pk=camera_id).first()
    if camera is None or not enabled() or not camera.mqtt_unlock_topic or not camera.mqtt_lock_payload:
        return True
    return publish([Message(camera.mqtt_unlock_topic, camera.mqtt_lock_payload)])["delivered"]


def announce(camera_id: int) -> bool:
    """The camera's availability (and discovery), e.g. when the bridge finds its stream down or back."""
    camera = Camera.objects.select_related("stream_status").filter(pk=camera_id).first()
    if camera is None or not enabled():
        return True
    return publish([*discovery_messages(camera), availability_message(camera, camera_online(camera))])["delivered"]


def backoff_seconds(attempt: int) -> float:
    return settings.FACEACCESS_MQTT_BACKOFF_SECONDS * 2 ** (attempt - 1)


def queue_event(event_id: int) -> None:
    """Queue the event's publication on the I/O worker (a broker down for Celery loses it, not the decision)."""
    _queue(DELIVER_MQTT, event_id)


def queue_announce(camera_id: int) -> None:
    if enabled():
        _queue(PUBLISH_AVAILABILITY, camera_id)


def _queue(task: str, *args: object, countdown: float | None = None) -> None:
    from faceaccess.jobs import send

    try:
        send(task, *args, countdown=countdown)
    except Exception as exc:  # Celery's broker is down: this message is lost, the decision is not
        log.warning("could not queue %s%s: %s", task, args, type(exc).__name__)


# ---------------------------------------------------------------- one attempt: connect, publish, acknowledged -----

def publish(messages: list[Message]) -> dict:
    """Connect, publish every message with QoS 1, wait for each PUBACK, disconnect; what happened, as the
    MqttDelivery row keeps it."""
    started = time.monotonic()
    client = None
    acked = 0
    try:
        client = _connect(started)
        infos = [client.publish(m.topic, m.payload.encode(), qos=1, retain=m.retain) for m in messages]
        for info in infos:
            left = settings.FACEACCESS_MQTT_TIMEOUT - (time.monotonic() - started)
            try:
                info.wait_for_publish(timeout=max(0.01, left))
            except (RuntimeError, ValueError):
                break
            if not info.is_published():
                break
            acked += 1
        if acked < len(messages):
            raise Failed(f"not acknowledged ({acked} of {len(messages)})")
    except Failed as exc:
        return _row(False, acked, exc.reason, started)
    finally:
        if client is not None:
            try:
                client.disconnect()
            finally:
                client.loop_stop()
    return _row(True, acked, "", started)


def _row(delivered: bool, acked: int, error: str, started: float) -> dict:
    return {"delivered": delivered, "messages": acked, "error": error,
            "duration_ms": round((time.monotonic() - started) * 1000.0, 1)}


def broker_address() -> tuple[str, int, bool]:
    """(host, port, tls) of FACEACCESS_MQTT_URL: mqtt:// (1883) or mqtts:// (8883)."""
    parts = urlsplit(settings.FACEACCESS_MQTT_URL)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
        raise Failed("bad broker URL")
    tls = parts.scheme in ("mqtts", "ssl")
    return parts.hostname, parts.port or (8883 if tls else 1883), tls


def _connect(started: float) -> paho.Client:
    host, port, tls = broker_address()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"faceaccess-{uuid.uuid4().hex[:12]}",
                         protocol=paho.MQTTv311, clean_session=True)
    client.connect_timeout = settings.FACEACCESS_MQTT_TIMEOUT
    if settings.FACEACCESS_MQTT_USERNAME:
        client.username_pw_set(settings.FACEACCESS_MQTT_USERNAME, settings.FACEACCESS_MQTT_PASSWORD or None)
    if tls:
        client.tls_set(ca_certs=settings.FACEACCESS_MQTT_CA_FILE or None)
    answered = threading.Event()
    result: dict = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        result["code"] = reason_code
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=30)
    except TimeoutError:
        raise Failed("timeout") from None
    except ConnectionRefusedError:
        raise Failed("connection refused") from None
    except socket.gaierror:
        raise Failed("name not resolved") from None
    except ssl.SSLError:
        raise Failed("TLS error") from None
    except OSError:
        raise Failed("connection failed") from None
    client.loop_start()
    if not answered.wait(max(0.01, settings.FACEACCESS_MQTT_TIMEOUT - (time.monotonic() - started))):
        client.loop_stop()
        raise Failed("timeout")
    code = result["code"]
    if code.is_failure:
        client.loop_stop()
        raise Failed("broker refused: not authorised" if code.value in (0x04, 0x05, 0x86, 0x87) else
                     "broker refused the connection")
    return client
