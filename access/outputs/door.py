"""The door's step: what happens once a snapshot is decided, called by the worker (and by the web process for a
card shown alone, access.snapshots.card_only, which has no worker side).

The worker calls :func:`decided` right after the decision commits, and only the delivery whose conditional
UPDATE (status still pending) wrote the decision gets there: that UPDATE is the claim, as healthchecks claims
its flips, so the step runs once per event however many deliveries of its message race, with no flag of its
own and no signal handler.

- Debounce: the same person granted at the same camera within the camera's ``debounce_seconds`` yields one
  granted event; the later ones are kept as repeats (``repeat_of``) and open nothing. The worker looks the
  first grant up (:func:`first_granted_within`) before its write and stores it with the decision, so the
  answer the camera waits for already says whether it was a repeat.
- Outputs: a camera with a ``webhook_url`` gets every decided event that is not a repeat
  (:mod:`access.outputs.webhooks`), queued on the I/O worker so that a slow receiver never delays recognition;
  with an MQTT broker configured, the same events are published there (:mod:`access.outputs.mqtt`), also queued.
"""

from __future__ import annotations

import datetime as dt
import logging

from faceaccess.jobs import send

from ..models import AccessEvent, Camera
from . import mqtt
from .webhooks import DELIVER_WEBHOOK

log = logging.getLogger(__name__)


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


def decided(event_id: int, camera: Camera | None, repeat_of: int | None) -> None:
    """The door's step for a decision that just committed (a repeat of an earlier grant opens nothing)."""
    if camera is None or repeat_of is not None:
        return
    if camera.webhook_url:
        try:
            send(DELIVER_WEBHOOK, event_id)
        except Exception as exc:  # the broker is down: the delivery is lost, the decision is not
            log.warning("could not queue the webhook of event %s: %s", event_id, exc)
    if mqtt.enabled():  # on the I/O worker too: a dead broker never delays the decision
        mqtt.queue_event(event_id)
