"""Door integration: anti-flood (debounce) and signed webhooks, run when an event is decided.

- Debounce: the same person granted at the same camera within the camera's ``debounce_seconds`` yields one
  granted event; the later ones are kept as repeats (``repeat_of``) and open nothing.
- Webhook: a camera with a ``webhook_url`` gets, for every decided event that is not a repeat, a JSON POST
  signed with HMAC-SHA256 over ``<timestamp>.<body>`` (headers ``X-FaceAccess-Timestamp`` and
  ``X-FaceAccess-Signature: sha256=<hex>``), retried with exponential back-off; every attempt is recorded
  (WebhookDelivery) and shown with the event. Deliveries run on the ``celery`` queue, never on the engine's,
  so a slow or dead receiver never delays recognition.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from . import naming
from .models import AccessEvent, Camera, WebhookDelivery, faces_without_vectors

log = logging.getLogger(__name__)
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


@receiver(post_save, sender=AccessEvent, dispatch_uid="access.door.decided")
def _decided(sender, instance: AccessEvent, created: bool, **kwargs) -> None:
    if instance.status != AccessEvent.Status.DONE or instance.door_handled:
        return
    AccessEvent.objects.filter(pk=instance.pk).update(door_handled=True)  # once, whatever saves follow
    instance.door_handled = True
    handle_decided(instance)


def handle_decided(instance: AccessEvent) -> None:
    """Debounce a decided event and queue its webhook (after the commit), for a save of a decided event that was
    not handled yet (the post_save receiver above). The worker does the same within its own decision UPDATE:
    :func:`first_granted_within` before it, :func:`queue_webhook` after it."""
    repeat = debounce(instance)
    queue_webhook(instance.pk, instance.camera, repeat.pk if repeat is not None else None)


def queue_webhook(event_id: int, camera: Camera | None, repeat_of: int | None) -> None:
    """Queue the door's webhook once the decision is committed, unless the event repeats an earlier grant."""
    if camera is not None and camera.webhook_url and repeat_of is None:
        transaction.on_commit(lambda: _queue_delivery(event_id))


def first_granted_within(camera: Camera | None, person_id: int | None, received_at: dt.datetime,
                         exclude_pk: int) -> int | None:
    """The first not-repeated granted event of ``person_id`` at ``camera`` within its debounce window before
    ``received_at`` (an event received at that time for that person is a repeat of it), or None."""
    if camera is None or person_id is None or not camera.debounce_seconds:
        return None
    since = received_at - dt.timedelta(seconds=camera.debounce_seconds)
    return (AccessEvent.objects.filter(camera=camera, person_id=person_id, decision="granted",
                                       repeat_of__isnull=True, received_at__gte=since, received_at__lte=received_at)
            .exclude(pk=exclude_pk).order_by("received_at", "pk").values_list("pk", flat=True).first())


def debounce(event: AccessEvent) -> AccessEvent | None:
    """Mark ``event`` as a repeat of the same person's granted event at the same camera within the window."""
    if event.decision != "granted":
        return None
    received = AccessEvent.objects.filter(pk=event.pk).values_list("received_at", flat=True).first()
    first = first_granted_within(event.camera, event.person_id, received, event.pk)
    if first is None:
        return None
    AccessEvent.objects.filter(pk=event.pk).update(repeat_of=first)
    event.repeat_of_id = first
    return event.repeat_of


def _queue_delivery(event_id: int) -> None:
    try:
        deliver_webhook.delay(event_id)
    except Exception as exc:  # the broker is down: the delivery is lost, the decision is not
        log.warning("could not queue the webhook of event %s: %s", event_id, exc)


@shared_task(bind=True, name="access.door.deliver_webhook", ignore_result=True, acks_late=True)
def deliver_webhook(self, event_id: int) -> str:
    event = (AccessEvent.objects.select_related("camera", "person").prefetch_related(faces_without_vectors())
             .filter(pk=event_id).first())
    if event is None or event.camera is None or not event.camera.webhook_url:
        return "gone"
    attempt = self.request.retries + 1
    outcome = post(event.camera.webhook_url, event.camera.webhook_secret, payload(event))
    WebhookDelivery.objects.create(event=event, attempt=attempt, url=event.camera.webhook_url, **outcome)
    if outcome["delivered"]:
        return "delivered"
    if attempt > settings.FACEACCESS_WEBHOOK_RETRIES:
        return "given up"
    raise self.retry(countdown=settings.FACEACCESS_WEBHOOK_BACKOFF_SECONDS * 2 ** (attempt - 1),
                     max_retries=settings.FACEACCESS_WEBHOOK_RETRIES)


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
