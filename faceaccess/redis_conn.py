"""This process's connections to Redis (the broker) for the app's own commands: one pool per process and
URL, kept open, every command bounded by FACEACCESS_BROKER_TIMEOUT and tried once (redis-py would otherwise
retry a timed-out command up to 10 times). Health checks, queue lengths, counters and the decision
notifications all use it, so a snapshot request does not open a new connection for each of them."""

from __future__ import annotations

import os
import threading
from typing import Any

from django.conf import settings

_pools: dict[tuple[int, str], Any] = {}
_lock = threading.Lock()


def pool():
    import redis

    key = (os.getpid(), settings.REDIS_URL)
    with _lock:
        found = _pools.get(key)
        if found is None:
            timeout = settings.FACEACCESS_BROKER_TIMEOUT
            # RESP2: a subscription's messages come back as plain replies (RESP3 would route them to push handlers).
            found = redis.ConnectionPool.from_url(settings.REDIS_URL, socket_timeout=timeout,
                                                  socket_connect_timeout=timeout, protocol=2)
            _pools[key] = found
        return found


_clients: dict[int, Any] = {}


def client():
    """This process's client on the pool (thread-safe: each command takes a connection from the pool)."""
    return client_for(pool())


def client_for(connections) -> Any:
    """A one-try client on the connection pool ``connections``, made once per pool and kept: building a redis.Redis
    (its table of reply parsers) costs ~0.5 ms, and Django's Redis cache would build one for every command."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    found = _clients.get(id(connections))
    if found is None:
        with _lock:
            found = _clients.setdefault(id(connections),
                                        redis.Redis(connection_pool=connections, retry=Retry(NoBackoff(), 0)))
    return found
