"""Every Celery task of access, each a thin wrapper over the plain-Python module that does the work.

Routed by CELERY_TASK_ROUTES: deciding snapshots and re-embedding chunks go to the engine workers' ``gpu``
queue; webhooks, the sweeper and retention to the I/O worker's ``celery`` queue. Modules below this one queue
these tasks by name (``faceaccess.jobs.send``), never by importing this module: the names are the constants
they import (an import of this module from below would close a loop).
"""

from __future__ import annotations

from celery import shared_task

from faceaccess.jobs import TASK_OPTIONS, RowTask

from .lifecycle import retention, sweeper
from .model_switch import reembed
from .model_switch.state import REEMBED_CHUNK
from .outputs import mqtt, webhooks
from .outputs.mqtt import DELIVER_MQTT, MQTT_RELOCK, PUBLISH_AVAILABILITY
from .outputs.webhooks import DELIVER_WEBHOOK
from .snapshots import processing
from .snapshots.channel import HEADER, PROCESS_SNAPSHOT

SWEEP = "access.tasks.sweep"
APPLY_RETENTION = "access.tasks.apply_retention"


class SnapshotTask(RowTask):
    model_path = "access.AccessEvent"
    label = "snapshot"


@shared_task(base=SnapshotTask, name=PROCESS_SNAPSHOT, **TASK_OPTIONS)
def process_snapshot(event_id: int, credential: str | None = None) -> str:
    # The web's intake timings travel in a message header (access.snapshots.channel.HEADER), not in the arguments.
    # ``credential``: the PIN / card number that came with the snapshot, sealed (access.rules.credentials).
    request = process_snapshot.request
    return processing.process_snapshot(event_id, request.get(HEADER) if request is not None else None, credential)


# A switch of the embedder (access.model_switch): each chunk embeds a few photos and queues the next, so door
# snapshots queued meanwhile on the same engine queue are served between chunks.
@shared_task(name=REEMBED_CHUNK, **TASK_OPTIONS)
def reembed_chunk(run: int) -> str:
    return reembed.run_chunk(run)


@shared_task(bind=True, name=DELIVER_WEBHOOK, ignore_result=True, acks_late=True, max_retries=None)
def deliver_webhook(self, event_id: int, attempt: int | None = None, waits: int = 0) -> str:
    """One attempt at the door's webhook; a failed one is retried with exponential back-off (webhooks.deliver
    gives up after FACEACCESS_WEBHOOK_RETRIES). One whose receiver is busy with other deliveries is not attempted:
    it is re-queued shortly, without counting as an attempt, and the worker's thread goes to other receivers."""
    attempt = attempt or self.request.retries + 1  # a message queued before ``attempt`` existed counts retries
    outcome = webhooks.deliver(event_id, attempt)
    if outcome == "busy":
        raise self.retry(args=(event_id,), kwargs={"attempt": attempt, "waits": waits + 1},
                         countdown=webhooks.busy_seconds(waits))
    if outcome == "retry":
        raise self.retry(args=(event_id,), kwargs={"attempt": attempt + 1, "waits": 0},
                         countdown=webhooks.backoff_seconds(attempt))
    return outcome


@shared_task(bind=True, name=DELIVER_MQTT, ignore_result=True, acks_late=True, max_retries=None)
def deliver_mqtt(self, event_id: int, attempt: int = 1) -> str:
    """One attempt to publish the event to the MQTT broker (QoS 1, every message acknowledged); a failed one is
    retried with exponential back-off until FACEACCESS_MQTT_RETRIES. Each attempt is recorded on the event."""
    outcome = mqtt.deliver(event_id, attempt)
    if outcome == "retry":
        raise self.retry(args=(event_id,), kwargs={"attempt": attempt + 1}, countdown=mqtt.backoff_seconds(attempt))
    return outcome


@shared_task(bind=True, name=MQTT_RELOCK, ignore_result=True, acks_late=True, max_retries=5)
def mqtt_relock(self, camera_id: int) -> None:
    """The end of a lock's unlock pulse (queued with the pulse as countdown)."""
    if not mqtt.relock(camera_id):
        raise self.retry(countdown=mqtt.backoff_seconds(self.request.retries + 1))


@shared_task(bind=True, name=PUBLISH_AVAILABILITY, ignore_result=True, max_retries=3)
def publish_mqtt_availability(self, camera_id: int) -> None:
    """A camera's retained availability (and discovery), when its stream goes down or comes back."""
    if not mqtt.announce(camera_id):
        raise self.retry(countdown=mqtt.backoff_seconds(self.request.retries + 1))


@shared_task(name=SWEEP, ignore_result=True)
def sweep() -> dict[str, int]:
    """Every FACEACCESS_SWEEP_EVERY_SECONDS (Celery beat): re-queue what was accepted and never finished."""
    return sweeper.sweep()


@shared_task(name=APPLY_RETENTION)
def apply_retention() -> dict[str, int]:
    """Daily (Celery beat): delete door snapshots past each site's retention windows."""
    report = retention.apply_retention()
    return {site: counts["snapshots"] for site, counts in report.sites.items()}
