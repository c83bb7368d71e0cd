"""Door webhooks: a camera with a ``webhook_url`` gets a JSON POST for every decided event that is not a repeat
(:mod:`access.outputs.door` decides that), signed with HMAC-SHA256 over ``<timestamp>.<body>`` (headers
``X-FaceAccess-Timestamp`` and ``X-FaceAccess-Signature: sha256=<hex>``), retried with exponential back-off by
the ``deliver_webhook`` task (:mod:`access.tasks`); every attempt is recorded (WebhookDelivery) and shown with
the event. Deliveries run on the ``celery`` queue, never on the engine's, so a slow or dead receiver never
delays recognition.

Each attempt goes through :mod:`faceaccess.outbound`: only to a public address or an allowed one
(``FACEACCESS_WEBHOOK_ALLOW``), resolved and checked again at every attempt and connected to as checked, never
following a redirect, within ``FACEACCESS_WEBHOOK_TIMEOUT`` in all. A failed attempt records one of outbound's fixed
words (``timeout``, ``connection refused``, ``HTTP 500``, ``redirect refused: <where>``...), never the receiver's
answer or an exception's text, and never the secret.

One receiver (``host:port``) gets at most ``FACEACCESS_WEBHOOK_PER_RECEIVER`` deliveries at once, counted in Redis
by every worker (:func:`take_slot`): a delivery to a receiver at its limit is not attempted but re-queued a moment
later ("busy"), so a receiver that never answers holds that many of the I/O worker's threads, not all of them, and
the other doors' deliveries go on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.utils import timezone

from faceaccess import outbound, redis_conn

from .. import naming
from ..models import AccessEvent, WebhookDelivery, faces_without_vectors

log = logging.getLogger(__name__)
DELIVER_WEBHOOK = "access.tasks.deliver_webhook"  # the Celery task (access.tasks), queued by name
SIGNATURE_HEADER = "X-FaceAccess-Signature"
TIMESTAMP_HEADER = "X-FaceAccess-Timestamp"
SLOTS_KEY = "faceaccess:webhook-slots:"  # + host:port: a sorted set of the deliveries in progress (token -> expiry)


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
        "liveness": event.liveness,  # the deciding face's live score (null: not scored)
        "reason_code": event.reason_code,  # e.g. "presentation_attack" ("" for most decisions)
        "second_factor": event.second_factor,  # "PIN ok / wrong / missing", "card …1234"; never the PIN or card
        "reason": naming.render(event.reason),
        "received_at": event.received_at.isoformat(),
        "processed_at": event.processed_at.isoformat() if event.processed_at else None,
    }


def deliver(event_id: int, attempt: int) -> str:
    """One attempt to deliver the event's webhook: "delivered", "gone" (nothing to deliver any more), "given up"
    (the last attempt failed, or the URL may not be posted to), "retry", or "busy" (its receiver is at its limit
    of deliveries at once: nothing was attempted or recorded, ask again shortly)."""
    event = (AccessEvent.objects.select_related("camera", "person").prefetch_related(faces_without_vectors())
             .filter(pk=event_id).first())
    if event is None or event.camera is None or not event.camera.webhook_url:
        return "gone"
    url = event.camera.webhook_url
    try:
        receiver = outbound.parse(url).receiver
    except outbound.Refused as exc:
        outcome = _failed(exc.reason, 0.0)
    else:
        slot = take_slot(receiver)
        if slot is None:
            return "busy"
        try:
            outcome = post(url, event.camera.webhook_secret, payload(event))
        finally:
            release_slot(receiver, slot)
    WebhookDelivery.objects.create(event=event, attempt=attempt, url=_shown_url(url), **outcome)
    if outcome["delivered"]:
        return "delivered"
    if outcome["error"] in (outbound.NOT_ALLOWED, outbound.BAD_URL):  # no retry makes it allowed
        return "given up"
    return "given up" if attempt > settings.FACEACCESS_WEBHOOK_RETRIES else "retry"


def backoff_seconds(attempt: int) -> float:
    """How long to wait before the attempt after ``attempt``."""
    return settings.FACEACCESS_WEBHOOK_BACKOFF_SECONDS * 2 ** (attempt - 1)


def busy_seconds(waits: int) -> float:
    """How long a delivery whose receiver is busy waits before asking again (``waits``: how often it already did):
    FACEACCESS_WEBHOOK_BUSY_RETRY_SECONDS doubled each time, up to one attempt's timeout, with some jitter so the
    waiting deliveries do not all ask at once."""
    base = settings.FACEACCESS_WEBHOOK_BUSY_RETRY_SECONDS * 2 ** min(waits, 16)
    return min(base, max(settings.FACEACCESS_WEBHOOK_TIMEOUT, settings.FACEACCESS_WEBHOOK_BUSY_RETRY_SECONDS)) \
        * random.uniform(0.8, 1.2)


def post(url: str, secret: str, body: dict) -> dict:
    """One signed POST; what happened, for the WebhookDelivery row (an error is one of outbound's fixed words)."""
    data = json.dumps(body, separators=(",", ":")).encode()
    timestamp = str(int(timezone.now().timestamp()))
    headers = {"Content-Type": "application/json", "User-Agent": "FaceAccess-webhook/1",
               TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, data)}
    started = time.monotonic()
    try:
        answer = outbound.post(url, data, headers, connect_timeout=settings.FACEACCESS_WEBHOOK_CONNECT_TIMEOUT,
                               timeout=settings.FACEACCESS_WEBHOOK_TIMEOUT)
    except (outbound.Refused, outbound.Failed) as exc:
        return _failed(exc.reason, started)
    code = answer.status
    if 200 <= code < 300:
        error = ""
    elif 300 <= code < 400 and answer.location:
        where = outbound.shown_location(answer.location)
        error = f"{outbound.REDIRECT}: {where}" if where else outbound.REDIRECT
    else:
        error = f"HTTP {code}"
    return {"status_code": code, "error": error, "delivered": 200 <= code < 300, "duration_ms": _ms(started)}


def _failed(reason: str, started: float) -> dict:
    return {"status_code": None, "error": reason, "delivered": False,
            "duration_ms": _ms(started) if started else 0.0}


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 1)


def _shown_url(url: str) -> str:
    """The URL as the delivery row keeps it: without a user name or password, should an old one have any."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        return urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))
    except ValueError:
        return ""


# ---------------------------------------------------------------- deliveries at once per receiver ---------------

_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
"""
_scripts: dict[int, object] = {}


def take_slot(receiver: str) -> str | None:
    """One of the receiver's FACEACCESS_WEBHOOK_PER_RECEIVER slots (a token to give back), or None when they are
    all taken. A slot expires by itself after the longest an attempt can take (a worker killed mid-attempt does not
    keep it). When Redis cannot be asked, the delivery goes ahead without a slot (a token that releases nothing)."""
    limit = settings.FACEACCESS_WEBHOOK_PER_RECEIVER
    if limit <= 0:
        return ""
    hold = settings.FACEACCESS_WEBHOOK_TIMEOUT + settings.FACEACCESS_WEBHOOK_CONNECT_TIMEOUT + 10.0
    token, now = uuid.uuid4().hex, time.time()
    try:
        client = redis_conn.client()
        script = _scripts.get(id(client))
        if script is None:
            script = _scripts.setdefault(id(client), client.register_script(_TAKE))
        taken = script(keys=[SLOTS_KEY + receiver], args=[now, now + hold, limit, token, int(hold * 1000) + 1000])
    except Exception as exc:  # Redis did not answer: deliver rather than hold every door's webhook
        log.warning("webhook receiver limit unavailable (%s): delivering without it", type(exc).__name__)
        return ""
    return token if taken else None


def release_slot(receiver: str, token: str) -> None:
    if not token:
        return
    try:
        redis_conn.client().zrem(SLOTS_KEY + receiver, token)
    except Exception as exc:  # it expires by itself
        log.warning("could not release a webhook slot (%s)", type(exc).__name__)
