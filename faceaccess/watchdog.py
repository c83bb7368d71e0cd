"""Notices a Celery worker that is alive but no longer takes messages, so the runner can restart it.

A worker can survive a broker outage with its process, its pool and even its control channel working, yet never
consume from its queue again (celery/celery#8030, #8091, #10205: still open in Celery 5.7 with Redis). A PID check
sees nothing wrong, and accepted snapshots would wait until the sweeper gives up on them. The symptom is visible
from outside, in Redis: kombu pushes new messages on the left of the queue's list and a worker pops from the right,
so the rightmost element is the oldest message waiting. If the same message stays oldest for ``stall_after``
seconds, nobody is consuming; unless the worker says it is busy with a task (a long one legitimately holds the
queue, and the task time limit bounds it), the worker is stuck.

No Django here, so the logic is tested without servers; the runner supplies the Redis client and the Celery app.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class QueueWatch:
    """How long the same message has been the oldest one waiting in ``queue``."""

    queue: str
    stall_after: float
    _oldest: bytes | None = field(default=None, repr=False)
    _since: float = field(default=0.0, repr=False)

    def observe(self, oldest: bytes | None, now: float) -> float:
        """Record the oldest message now (None: the queue is empty); return for how many seconds it has been so."""
        if oldest is None or oldest != self._oldest:
            self._oldest, self._since = oldest, now
            return 0.0
        return now - self._since

    def reset(self, now: float) -> None:
        """Start counting again (after a restart, the new worker gets the full ``stall_after``)."""
        self._oldest, self._since = None, now


def oldest_message(redis_client, queue: str) -> bytes | None:
    """The message a worker would take next from ``queue`` (a kombu Redis list), or None when it is empty."""
    return redis_client.lindex(queue, -1)


def worker_busy(app, node_prefix: str, timeout: float = 2.0) -> bool | None:
    """True if a worker named ``node_prefix``... runs a task now, False if it answered idle, None if no answer.

    A worker whose event loop is frozen does not answer the control channel either: None, treated as stuck.
    """
    replies = app.control.inspect(timeout=timeout).active() or {}
    mine = [tasks for name, tasks in replies.items() if name.startswith(node_prefix)]
    if not mine:
        return None
    return any(tasks for tasks in mine)


@dataclass
class Watchdog:
    """Checks one worker's queue every ``every`` seconds and calls ``restart`` when the worker is stuck."""

    watch: QueueWatch
    node_prefix: str
    restart: Callable[[str], None]
    oldest: Callable[[str], bytes | None]
    busy: Callable[[str], bool | None]
    every: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _next: float = 0.0

    def check(self) -> None:
        now = self.clock()
        if now < self._next:
            return
        self._next = now + self.every
        try:
            oldest = self.oldest(self.watch.queue)
        except Exception:  # broker down or frozen: the runner's Redis supervision deals with it, not us
            self.watch.reset(now)
            return
        waited = self.watch.observe(oldest, now)
        if waited < self.watch.stall_after:
            return
        try:
            busy = self.busy(self.node_prefix)
        except Exception:
            return  # cannot ask: the broker is unwell, which is not the worker's fault
        if busy:
            return  # a long task holds the queue; its time limit bounds it
        state = "did not answer" if busy is None else "is idle"
        self.restart(f"the oldest message in queue {self.watch.queue!r} has waited {waited:.0f} s and the worker "
                     f"{state}: it has stopped taking messages")
        self.watch.reset(self.clock())
