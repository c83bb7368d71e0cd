"""The Celery workers' consumer: back on the broker within about two seconds of it coming back.

Celery's consumer reconnects with kombu's default back-off, 2, 4, 6 ... up to 30 s between tries, and gives up
after 100 of them. After a 30 s Redis outage a worker could thus sleep up to ~10 s more with the broker back,
and after a freeze that broke its connection up to 30 s: snapshots queued meanwhile reached the worker past their
site's decision deadline (fault_bench: 12 of 178 expired, doors answered 202 for ~40 s after Redis came back).
A refused connection costs nothing, so this consumer tries every 0.5-2 s, without a limit
(CELERY_BROKER_CONNECTION_MAX_RETRIES = None); Celery has no setting for the interval itself.
"""

from __future__ import annotations

from celery.worker.consumer import Consumer

RETRY_INTERVALS = {"interval_start": 0.5, "interval_step": 0.5, "interval_max": 2.0}


class QuickReconnectConsumer(Consumer):
    def ensure_connected(self, conn):
        ensure = conn.ensure_connection

        def quickly(*args, **kwargs):
            for name, value in RETRY_INTERVALS.items():
                kwargs.setdefault(name, value)
            return ensure(*args, **kwargs)

        conn.ensure_connection = quickly
        return super().ensure_connected(conn)
