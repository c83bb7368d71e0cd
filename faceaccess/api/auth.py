"""Password guessing: django-axes lockouts per (username, address) with a capped back-off, a per-address throttle of
password checks, and the throttled token endpoint.

django-axes records every failed login (the console's /login/, the Django admin and ``POST /api/v1/auth/token/``:
they all go through ``django.contrib.auth.authenticate`` with the request) and, once one username has
``FACEACCESS_LOGIN_FAILURE_LIMIT`` failures from one IP address (``AXES_LOCKOUT_PARAMETERS = [["username",
"ip_address"]]``), refuses that username from that address in ``LockoutBackend``, the first authentication
backend, before ModelBackend hashes the password: a locked-out guess costs a database lookup, not a password hash,
so it does not slow the doors down. The same account from another address, and other accounts from that address,
are not affected: a guesser cannot lock the admin out.

The lockout lasts ``FACEACCESS_LOGIN_COOLOFF_SECONDS`` after the last attempt, doubled for each attempt made past
the limit (each one is recorded, so a guesser that keeps trying keeps doubling it), up to
``FACEACCESS_LOGIN_COOLOFF_MAX_SECONDS``. The answer is 429 with ``Retry-After``. An admin lifts one on the
console's Lockouts page (:func:`unlock`) or with axes' commands (``manage.py axes_reset``, ``axes_reset_username
<name>``, ``axes_reset_ip_username <ip> <name>``).

An address that tries many usernames is throttled instead: ``LockoutBackend`` counts every password check per
address (``FACEACCESS_LOGIN_RATE_PER_IP``, a DRF throttle in the shared throttle cache) and refuses the ones over
the rate with 429, also before any hashing.
"""

from __future__ import annotations

import datetime as dt
import logging
import math

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_ip_address, get_client_username
from django.conf import settings
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import timezone
from knox.models import AuthToken
from rest_framework import exceptions, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from .errors import JsonErrorsMixin
from .middleware import is_api
from .throttling import ClientIPThrottle, FailOpenThrottle, _cache_key_part

log = logging.getLogger(__name__)
THROTTLED_WAIT = "faceaccess_login_wait"  # request attribute: seconds, when the address throttle refused it


class AddressThrottle(FailOpenThrottle):
    """Password checks per client address (REMOTE_ADDR, as django-axes counts it), whatever the username:
    FACEACCESS_LOGIN_RATE_PER_IP."""

    scope = "login_ip"

    def get_rate(self) -> str | None:
        return settings.FACEACCESS_LOGIN_RATE_PER_IP or None

    def get_cache_key(self, request, view) -> str | None:
        ip = request.META.get("REMOTE_ADDR") or "unknown"
        return self.cache_format % {"scope": self.scope, "ident": _cache_key_part(ip)}


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' check, first in AUTHENTICATION_BACKENDS: refuses a throttled address or a locked-out
    (username, address) before any hashing.

    A call without a request (``Client.login()`` in tests, a script) has no client to count: it is let through to
    the next backend rather than refused with an error as axes' own backend does."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        throttle = AddressThrottle()
        if not throttle.allow_request(request, None):
            # Flagged as axes flags a lockout: its middleware (console, admin) and the token view answer 429.
            setattr(request, THROTTLED_WAIT, max(1, math.ceil(throttle.wait() or 1)))
            request.axes_locked_out = True
            raise AxesBackendPermissionDenied("too many login attempts from this address")
        return super().authenticate(request, username=username, password=password, **kwargs)


def _pair(request: HttpRequest) -> tuple[str | None, str | None]:
    """The (address, username) axes counts the request's failures under."""
    ip = getattr(request, "axes_ip_address", None) or get_client_ip_address(request)
    try:
        username = get_client_username(request)
    except Exception:  # an unreadable body: axes counts it without a username
        username = None
    return ip, username if isinstance(username, str) else None


def _live_attempts(request: HttpRequest | None) -> list[dict]:
    """axes' failure records (not yet expired) of the request's username from the request's address."""
    from axes.models import AccessAttempt

    if request is None:
        return []
    ip, username = _pair(request)
    rows = AccessAttempt.objects.filter(ip_address=ip, username=username, expiration__expires_at__gt=timezone.now())
    return list(rows.values("failures_since_start", "attempt_time"))


def cooloff_for(failures: int) -> dt.timedelta:
    """The base cool-off, doubled for every failure past the limit, capped."""
    base = settings.FACEACCESS_LOGIN_COOLOFF_SECONDS
    cap = settings.FACEACCESS_LOGIN_COOLOFF_MAX_SECONDS
    extra = max(0, failures - settings.FACEACCESS_LOGIN_FAILURE_LIMIT)
    seconds = cap if extra >= 64 else min(cap, base * 2**extra)
    return dt.timedelta(seconds=seconds)


def lockout_cooloff(request: HttpRequest | None) -> dt.timedelta:
    """AXES_COOLOFF_TIME: how long the failures of this request's username from its address are remembered."""
    return cooloff_for(sum(r["failures_since_start"] for r in _live_attempts(request)))


def retry_after_seconds(request: HttpRequest) -> int:
    """Seconds until the request is let through again (at least 1): the address throttle's wait when that refused
    it, else until the (username, address) lockout ends."""
    throttled = getattr(request, THROTTLED_WAIT, None)
    if throttled:
        return int(throttled)
    rows = _live_attempts(request)
    cooloff = cooloff_for(sum(r["failures_since_start"] for r in rows))
    if not rows:
        return max(1, math.ceil(cooloff.total_seconds()))
    latest = max(r["attempt_time"] for r in rows)
    return max(1, math.ceil((latest + cooloff - timezone.now()).total_seconds()))


def _wait_words(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{math.ceil(seconds / 60)} min"


def _message(seconds: int, throttled: bool = False) -> str:
    if throttled:
        return f"too many login attempts from this address: try again in {_wait_words(seconds)}"
    return (f"too many failed logins for this account from this address: try again in {_wait_words(seconds)} "
            "(every attempt before then doubles the wait)")


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with Retry-After (JSON under /api/, text elsewhere)."""
    seconds = retry_after_seconds(request)
    throttled = bool(getattr(request, THROTTLED_WAIT, None))
    message = _message(seconds, throttled)
    if is_api(request):
        response = JsonResponse({"error": "throttled" if throttled else "locked_out", "detail": message},
                                status=429)
    else:
        # The console's styled page (429.html) with the same words and a way back to the login page.
        response = HttpResponse(render_to_string("429.html", {"message": message}, request=request), status=429)
    response["Retry-After"] = str(seconds)
    return response


# ---------------------------------------------------------------- for admins -------------------------------------

def current_lockouts() -> list[dict]:
    """Every (username, address) with live failure records, most recent first: ``username``, ``ip_address``,
    ``failures``, ``last_attempt``, ``until`` (when its records expire) and ``locked`` (at the limit or past it)."""
    from axes.models import AccessAttempt

    rows = (AccessAttempt.objects.filter(expiration__expires_at__gt=timezone.now())
            .values("username", "ip_address")
            .annotate(failures=Sum("failures_since_start"), last_attempt=Max("attempt_time"),
                      until=Max("expiration__expires_at"))
            .order_by("-last_attempt"))
    limit = settings.FACEACCESS_LOGIN_FAILURE_LIMIT
    return [{**row, "locked": row["failures"] >= limit} for row in rows]


def unlock(username: str | None, ip_address: str | None, by: str = "") -> int:
    """Forget the failures of ``username`` from ``ip_address`` (both as axes recorded them): it may log in from
    there again at once. Returns how many records went."""
    from axes.models import AccessAttempt

    count, _ = AccessAttempt.objects.filter(username=username, ip_address=ip_address).delete()
    log.warning("login lockout of %r from %s lifted by %s (%d records)", username, ip_address, by or "?", count)
    return count


class LockedOut(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"

    def __init__(self, seconds: int):
        super().__init__(detail=_message(seconds), code=self.default_code)
        self.wait = seconds  # DRF's handler turns it into Retry-After


class ObtainTokenView(JsonErrorsMixin, GenericAPIView):
    """``POST /api/v1/auth/token/`` with ``username`` and ``password``: a new API token (django-rest-knox: only its
    hash is stored; it expires after FACEACCESS_TOKEN_TTL_HOURS). Throttled per client IP (429 before the password
    is looked at), and counted by django-axes like the console's login (429 once that username is locked out from
    that address). Not throttled per username: whoever sends it, a count per username would let anyone lock the
    account's owner out."""

    throttle_classes = [ClientIPThrottle]
    serializer_class = AuthTokenSerializer
    authentication_classes = []
    permission_classes = []

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except exceptions.ValidationError:
            # axes flags the request (DRF's, which authenticate() received) when this failure reached the limit
            # or when LockoutBackend refused a locked-out client without checking its password.
            if getattr(request, THROTTLED_WAIT, None):
                raise exceptions.Throttled(wait=getattr(request, THROTTLED_WAIT)) from None
            if getattr(request, "axes_locked_out", False):
                raise LockedOut(retry_after_seconds(request)) from None
            raise
        user = serializer.validated_data["user"]
        # A token is a login: axes logs it and, as after a console login, forgets the earlier failures.
        AxesProxyHandler.user_logged_in(sender=type(self), request=request, user=user)
        instance, token = AuthToken.objects.create(user)
        return Response({"token": token, "expiry": instance.expiry})
