"""What the web intake and the worker say to each other about a snapshot, below both of them.

- The job: the task's name (:data:`PROCESS_SNAPSHOT`, queued by name so that the intake never imports the
  worker's code) and the message header (:data:`HEADER`) that carries the web's intake timings.
- The stages of ``AccessEvent.timings`` (:data:`STAGES`): which process measures which part of a snapshot's time.
- The decision channel: the worker announces on an event's Redis channel that it was decided
  (:func:`publish_decision`, after the commit), and a waiting request listens (:class:`DecisionListener`).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from django.conf import settings

from faceaccess import redis_conn

log = logging.getLogger(__name__)

PROCESS_SNAPSHOT = "access.tasks.process_snapshot"  # the Celery task that decides one snapshot (access.tasks)

# The stages of ``AccessEvent.timings`` (milliseconds), in the order a snapshot meets them; "web" or "worker"
# says which process measures it.
STAGES = (
    ("parse", "web", "request start to intake: camera key, throttle, multipart parse, the photo's header checks"),
    ("store", "web", "writing the photo file"),
    ("insert", "web", "inserting the event row and committing"),
    ("enqueue", "web", "publishing the job to the queue"),
    ("queue", "worker", "published to picked up by a worker"),
    ("load", "worker", "reading the event row and the photo's bytes"),
    ("decode", "worker", "decoding the photo"),
    ("batch_wait", "worker", "waiting for the engine (other snapshots of the batch, a busy engine)"),
    ("detect", "worker", "face detection (for the whole batch of batch_size snapshots)"),
    ("embed", "worker", "alignment + embedding (for the whole batch)"),
    ("search", "worker", "pgvector nearest person + runner-up, impostor check"),
    ("credential", "worker", "a door's second factor: the PIN's slow hash compared, or the card looked up"),
    ("decide", "worker", "people, grants, access levels and camera rules, the decision"),
    ("liveness", "worker", "the live score of the face about to be let in, and the decision again (policy not off)"),
    ("save", "worker", "getting the decision's write ready (the door's debounce look-up)"),
    ("commit", "worker", "writing the decision and the faces, and committing them"),
    ("notify", "web", "the decision's publication reaching the waiting request"),
    ("fetch", "web", "reading the decided event back for the answer"),
    ("total", "web", "request start to answer ready"),
)
HEADER = "faceaccess_intake"  # the task message header with the web's intake timings and the time it was sent
CHANNEL_PREFIX = "faceaccess:event:"


def decision_channel(event_id: int) -> str:
    """The Redis channel on which the worker announces that an event was decided (or failed)."""
    return f"{CHANNEL_PREFIX}{event_id}"


def publish_decision(event_id: int, status: str, **extra: Any) -> bool:
    """Tell the requests waiting for ``event_id`` that it is finished (call after the commit). A Redis that does
    not answer costs at most FACEACCESS_BROKER_TIMEOUT and is logged: the waiters then find the decision when
    they next read the database."""
    payload = json.dumps({"status": status, "t": time.time(), **extra})
    try:
        redis_conn.client().publish(decision_channel(event_id), payload)
        return True
    except Exception as exc:
        log.warning("could not announce the decision of event %s: %s: %s", event_id, type(exc).__name__, exc)
        return False


class DecisionListener:
    """A subscription to one event's channel on a pooled connection (SUBSCRIBE ... UNSUBSCRIBE, then the
    connection goes back to the pool, still open). ``ok`` is False when Redis could not be subscribed to, or
    failed while waiting: the caller then falls back to reading the database."""

    def __init__(self, event_id: int) -> None:
        self.channel = decision_channel(event_id).encode()
        self.pool = None
        self.conn = None
        try:
            self.pool = redis_conn.pool()
            self.conn = self.pool.get_connection()
            self.conn.send_command("SUBSCRIBE", self.channel)
            reply = self.conn.read_response()
            if not (isinstance(reply, list) and reply[:1] == [b"subscribe"]):
                raise ValueError(f"unexpected reply to SUBSCRIBE: {reply!r}")
        except Exception as exc:
            log.warning("cannot subscribe to decisions (%s: %s): waiting by reading the database", type(exc).__name__,
                        exc)
            self._drop()

    @property
    def ok(self) -> bool:
        return self.conn is not None

    def wait(self, timeout: float) -> dict | None:
        """The next announcement on the channel within ``timeout`` seconds, or None."""
        deadline = time.monotonic() + timeout
        try:
            while self.conn is not None:
                left = deadline - time.monotonic()
                if not self.conn.can_read(timeout=max(0.0, left)):
                    return None
                reply = self.conn.read_response()
                if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message" and reply[1] == self.channel:
                    try:
                        return json.loads(reply[2])
                    except ValueError:
                        return {}
                if left <= 0:
                    return None
        except Exception as exc:
            log.warning("lost the decision subscription (%s: %s): reading the database instead", type(exc).__name__,
                        exc)
            self._drop()
        return None

    def close(self) -> None:
        if self.conn is None:
            return
        try:
            self.conn.send_command("UNSUBSCRIBE", self.channel)
            deadline = time.monotonic() + settings.FACEACCESS_BROKER_TIMEOUT
            while True:  # a message published meanwhile may come first
                reply = self.conn.read_response()
                if isinstance(reply, list) and reply[:1] == [b"unsubscribe"] and reply[2] == 0:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("no UNSUBSCRIBE confirmation")
            self.pool.release(self.conn)
            self.conn = None
        except Exception:
            self._drop()

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.disconnect()
            finally:
                self.pool.release(self.conn)
        self.conn = None

    def __enter__(self) -> DecisionListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
