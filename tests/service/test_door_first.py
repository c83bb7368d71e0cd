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


def test_door_messages_are_taken_before_bulk_messages_queued_earlier(service_urls):
    tag = uuid.uuid4().hex[:8]
    doors, bulk = _queue(f"doors-{tag}"), _queue(f"bulk-{tag}")
    taken: list[str] = []
    with app.connection_for_write() as conn:
        producer = conn.Producer()
        for queue in (doors, bulk):
            queue(conn.default_channel).declare()
        for n in range(3):  # an operator's upload first ...
            producer.publish({"job": f"bulk{n}"}, exchange=bulk.exchange, routing_key=bulk.routing_key)
        for n in range(2):  # ... then two door snapshots
            producer.publish({"job": f"door{n}"}, exchange=doors.exchange, routing_key=doors.routing_key)

    def take(body, message):
        taken.append(body["job"])
        message.ack()

    with app.connection_for_read() as conn:
        channel = conn.channel()
        channel.basic_qos(0, 1, False)  # like the worker: one message at a time (prefetch multiplier 1, -c 1)
        with Consumer(channel, [doors, bulk], callbacks=[take]):
            while len(taken) < 5:
                conn.drain_events(timeout=5)
    assert taken[:2] == ["door0", "door1"], taken
    assert sorted(taken[2:]) == ["bulk0", "bulk1", "bulk2"]


def test_a_busy_cameras_backlog_goes_behind_a_door_with_nothing_waiting(service_urls):
    tag = uuid.uuid4().hex[:8]
    doors, bulk = _queue(f"doors-{tag}"), _queue(f"bulk-{tag}")
    taken: list[str] = []
    with app.connection_for_write() as conn:
        producer = conn.Producer()
        for queue in (doors, bulk):
            queue(conn.default_channel).declare()
        for n in range(2):  # an operator's photos (priority 9) ...
            producer.publish({"job": f"bulk{n}"}, exchange=bulk.exchange, routing_key=bulk.routing_key, priority=9)
        for n, priority in enumerate((0, 3, 6, 9)):  # ... a busy camera's four snapshots ...
            producer.publish({"job": f"busy{n}"}, exchange=doors.exchange, routing_key=doors.routing_key,
                             priority=priority)
        producer.publish({"job": "victim"}, exchange=doors.exchange, routing_key=doors.routing_key)  # ... a door
        lengths = queue_lengths((doors.name, bulk.name))

    def take(body, message):
        taken.append(body["job"])
        message.ack()

    with app.connection_for_read() as conn:
        channel = conn.channel()
        channel.basic_qos(0, 1, False)
        with Consumer(channel, [doors, bulk], callbacks=[take]):
            while len(taken) < 7:
                conn.drain_events(timeout=5)
    assert lengths == {doors.name: 5, bulk.name: 2}  # every priority's list counted (back-pressure, dashboard)
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
