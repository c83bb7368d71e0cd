"""Door webhooks: a camera with a ``webhook_url`` gets a JSON POST for every decided event that is not a repeat
(:mod:`access.outputs.door` decides that), signed with HMAC-SHA256 over ``<timestamp>.<body>`` (headers
``X-FaceAccess-Timestamp`` and ``X-FaceAccess-Signature: sha256=<hex>``), retried with exponential back-off by
the ``deliver_webhook`` task (:mod:`access.tasks`); every attempt is recorded (WebhookDelivery) and shown with
the event. Deliveries run on the ``celery`` queue, never on the engine's, so a slow or dead receiver never
delays recognition.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.utils import timezone

from .. import naming
from ..models import AccessEvent, WebhookDelivery, faces_without_vectors

log = logging.getLogger(__name__)
DELIVER_WEBHOOK = "access.tasks.deliver_webhook"  # the Celery task (access.tasks), queued by name
SIGNATURE_HEADER = "X-FaceAccess-Signature"
TIMESTAMP_HEADER = "X-FaceAccess-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def payload(event: AccessEvent) -> dict:
    faces = [f for f in event.faces.all() if f.distance is not None]
    best = min(faces, key=lambda f: f.distance) if faces else None
    return {
        "event": event.pk,
        "camera": event.camera_id,
        "camera_name": event.camera.name if event.camera else None,
        "site": event.site_id,
        "decision": event.decision,
        "person": event.person_id,
        "person_name": event.person.name if event.person else None,
        "distance": best.distance if best else None,
        "threshold": event.threshold,
        "reason": naming.render(event.reason),
        "received_at": event.received_at.isoformat(),
        "processed_at": event.processed_at.isoformat() if event.processed_at else None,
    }


def deliver(event_id: int, attempt: int) -> str:
    """One attempt to deliver the event's webhook: "delivered", "gone" (nothing to deliver any more), "given up"
    (the last attempt failed) or "retry"."""
    event = (AccessEvent.objects.select_related("camera", "person").prefetch_related(faces_without_vectors())
             .filter(pk=event_id).first())
    if event is None or event.camera is None or not event.camera.webhook_url:
        return "gone"
    outcome = post(event.camera.webhook_url, event.camera.webhook_secret, payload(event))
    WebhookDelivery.objects.create(event=event, attempt=attempt, url=event.camera.webhook_url, **outcome)
    if outcome["delivered"]:
        return "delivered"
    return "given up" if attempt > settings.FACEACCESS_WEBHOOK_RETRIES else "retry"


def backoff_seconds(attempt: int) -> float:
    """How long to wait before the attempt after ``attempt``."""
    return settings.FACEACCESS_WEBHOOK_BACKOFF_SECONDS * 2 ** (attempt - 1)


def post(url: str, secret: str, body: dict) -> dict:
    """One signed POST; what happened, for the WebhookDelivery row."""
    data = json.dumps(body, separators=(",", ":")).encode()
    timestamp = str(int(timezone.now().timestamp()))
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "FaceAccess-webhook/1",
        TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, data)})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=settings.FACEACCESS_WEBHOOK_TIMEOUT) as response:
            code, error = response.status, ""
    except urllib.error.HTTPError as exc:
        code, error = exc.code, f"HTTP {exc.code}"
    except Exception as exc:  # refused, timed out, bad address
        code, error = None, f"{type(exc).__name__}: {exc}"[:500]
    return {"status_code": code, "error": error, "delivered": code is not None and 200 <= code < 300,
            "duration_ms": round((time.monotonic() - started) * 1000.0, 1)}
