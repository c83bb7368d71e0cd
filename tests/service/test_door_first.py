"""An engine worker takes door snapshots before bulk work (enrollment photos, re-embedding chunks), and a camera
with nothing waiting before another camera's backlog.

Bulk work has its own queue (FACEACCESS_BULK_QUEUE) which engine workers list after the doors' "gpu" queue, and
the broker transport takes from a worker's queues in the order listed ("priority" queue order); bulk work is also
sent at priority 9 (last), and a camera's 2nd, 3rd, 4th pending snapshot at 3, 6, 9
(access.snapshots.intake.fair_priority). Tested on the real Redis with Celery's own connection settings, on queues
of the test's own (the session's worker consumes the real ones).
"""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone
from kombu import Consumer, Exchange, Queue

from access.models import AccessEvent
from access.snapshots.intake import fair_priority
from faceaccess.celery import app
from faceaccess.health import queue_lengths


def _queue(name: str) -> Queue:
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def publish_then_take(messages: list[tuple[str, str, int | None]]) -> tuple[list[str], dict[str, int] | None]:
    """Publish ``(queue "doors"/"bulk", job, priority)`` in order on fresh queues, then take them all as an engine
    worker does (-Q doors,bulk, one message at a time): the jobs in the order taken, and the queues' lengths as
    queue_lengths counted them before."""
    tag = uuid.uuid4().hex[:8]
    queues = {"doors": _queue(f"doors-{tag}"), "bulk": _queue(f"bulk-{tag}")}
    with app.connection_for_write() as conn:
        producer = conn.Producer()
        for queue in queues.values():
            queue(conn.default_channel).declare()
        for name, job, priority in messages:
            queue = queues[name]
            producer.publish({"job": job}, exchange=queue.exchange, routing_key=queue.routing_key, priority=priority)
        lengths = queue_lengths((queues["doors"].name, queues["bulk"].name))
    taken: list[str] = []

    def take(body, message):
        taken.append(body["job"])
        message.ack()

    with app.connection_for_read() as conn:
        channel = conn.channel()
        channel.basic_qos(0, 1, False)  # like the worker: one message at a time (prefetch multiplier 1, -c 1)
        with Consumer(channel, [queues["doors"], queues["bulk"]], callbacks=[take]):
            while len(taken) < len(messages):
                conn.drain_events(timeout=5)
    return taken, lengths and {k: lengths[q.name] for k, q in queues.items()}


def test_door_messages_are_taken_before_bulk_messages_queued_earlier(service_urls):
    # an operator's upload first (no priority: the queue order alone decides), then two door snapshots
    taken, _ = publish_then_take([("bulk", f"bulk{n}", None) for n in range(3)]
                                 + [("doors", f"door{n}", None) for n in range(2)])
    assert taken[:2] == ["door0", "door1"], taken
    assert sorted(taken[2:]) == ["bulk0", "bulk1", "bulk2"]


def test_a_busy_cameras_backlog_goes_behind_a_door_with_nothing_waiting(service_urls):
    taken, lengths = publish_then_take(
        [("bulk", f"bulk{n}", 9) for n in range(2)]  # an operator's photos (priority 9) ...
        + [("doors", f"busy{n}", p) for n, p in enumerate((0, 3, 6, 9))]  # ... a busy camera's four snapshots ...
        + [("doors", "victim", 0)])  # ... then a door with nothing waiting
    assert lengths == {"doors": 5, "bulk": 2}  # every priority's list counted (back-pressure, dashboard)
    assert taken == ["busy0", "victim", "busy1", "busy2", "busy3", "bulk0", "bulk1"], taken


@pytest.mark.django_db
def test_a_cameras_snapshots_are_sent_at_0_3_6_then_9(camera):
    from access.models import Camera

    cam = Camera.objects.get(pk=camera.camera.pk)
    events = [AccessEvent.objects.create(camera=cam, site_id=cam.site_id, received_at=timezone.now())
              for _ in range(5)]
    assert [fair_priority(e.pk, e) for e in events] == [0, 3, 6, 9, 9]
    AccessEvent.objects.filter(pk=events[0].pk).update(status=AccessEvent.Status.DONE)  # decided: no longer ahead
    assert fair_priority(events[1].pk, None) == 0
