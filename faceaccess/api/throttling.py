"""Request rates (DRF throttling), counted in Redis so that every web thread and process counts together.

Scopes (rates in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``, from the ``FACEACCESS_*_RATE*`` settings):

- ``snapshots``: a camera's posts, per camera (its key);
- ``token_ip``: ``POST /api/v1/auth/token/`` per client IP (not per username: anyone could spend a username's
  count and lock its owner out, issue 17).

A refused request answers 429 with ``Retry-After`` (DRF's ``Throttled``) before the view does any work, so a
throttled password guess costs no password hashing.

The counts live in the ``throttle`` cache: Django's Redis cache on ``REDIS_URL`` with short socket timeouts and no
client-side retries. Throttling fails open: when Redis does not answer, the request goes through and a warning is
logged, and the cache is left alone for a few seconds, so a frozen Redis costs one short timeout, not one per request.
"""

from __future__ import annotations

import hashlib
import logging
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from faceaccess import redis_conn

log = logging.getLogger(__name__)

CACHE_ALIAS = "throttle"
SKIP_AFTER_FAILURE_S = 5.0  # how long throttling stays open after the cache failed to answer


class _NoRetryClient(RedisCacheClient):
    def get_client(self, key=None, *, write=False):
        # One kept client per pool, each command tried once: redis-py would retry a failed command up to 10 times
        # (a frozen Redis would hold the request for 10 socket timeouts), and Django builds a client per command.
        return redis_conn.client_for(self._get_connection_pool(write))


class ThrottleCache(RedisCache):
    """Django's Redis cache on ``LOCATION``, or on ``settings.REDIS_URL`` when it has none (read when the cache
    first connects, so a REDIS_URL set after the settings loaded, as the test session does, is the one used);
    one try per command."""

    def __init__(self, server, params):
        super().__init__(server or "", params)
        self._class = _NoRetryClient

    @cached_property
    def _cache(self):
        servers = [s for s in self._servers if s] or [settings.REDIS_URL]
        return self._class(servers, **self._options)


class _Breaker:
    """Process-wide: when the cache last failed, so that the other threads skip it for a while."""

    skip_until = 0.0


def _cache_key_part(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class FailOpenThrottle(SimpleRateThrottle):
    """DRF's sliding-window throttle on the shared ``throttle`` cache, letting requests through when it fails.

    The rate is read per request from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (DRF reads it once, at import)."""

    @property
    def cache(self):  # one client per thread, as Django's caches are
        return caches[CACHE_ALIAS]

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None or time.monotonic() < _Breaker.skip_until:
            return True
        try:
            self.history = self.cache.get(self.key, [])
            self.now = self.timer()
            while self.history and self.history[-1] <= self.now - self.duration:
                self.history.pop()
            if len(self.history) >= self.num_requests:
                return self.throttle_failure()
            return self.throttle_success()
        except Exception as exc:  # any cache failure: let the request through rather than hold or refuse it
            _Breaker.skip_until = time.monotonic() + SKIP_AFTER_FAILURE_S
            log.warning("throttle cache unavailable (%s: %s): requests are not rate limited for the next %.0f s",
                        type(exc).__name__, exc, SKIP_AFTER_FAILURE_S)
            return True


class CameraThrottle(FailOpenThrottle):
    """Per camera: its authentication puts the camera (a model instance) in ``request.auth``."""

    scope = "snapshots"

    def get_cache_key(self, request, view) -> str | None:
        pk = getattr(request.auth, "pk", None)
        if pk is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"camera-{pk}"}


class ClientIPThrottle(FailOpenThrottle):
    """Per client IP: REMOTE_ADDR, as django-axes counts it (DRF's own get_ident would believe a client's
    X-Forwarded-For header, and a guesser could send a new one with every try)."""

    scope = "token_ip"

    def get_cache_key(self, request, view) -> str | None:
        ip = request.META.get("REMOTE_ADDR") or "unknown"
        return self.cache_format % {"scope": self.scope, "ident": _cache_key_part(ip)}
