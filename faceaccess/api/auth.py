"""Password guessing: django-axes lockouts with back-off, and the throttled token endpoint.

django-axes records every failed login (the console's /login/, the Django admin and ``POST /api/v1/auth/token/``:
they all go through ``django.contrib.auth.authenticate`` with the request) and, once an IP address or a username
has ``FACEACCESS_LOGIN_FAILURE_LIMIT`` failures, refuses further attempts in ``LockoutBackend``, the first
authentication backend, before ModelBackend hashes the password: a locked-out guess costs a database lookup, not
a password hash, so it does not slow the doors down.

The lockout lasts ``FACEACCESS_LOGIN_COOLOFF_SECONDS`` after the last attempt, doubled for each attempt made past
the limit (each one is recorded, so a guesser that keeps trying keeps doubling it), up to
``FACEACCESS_LOGIN_COOLOFF_MAX_SECONDS``. The answer is 429 with ``Retry-After``.
"""

from __future__ import annotations

import datetime as dt
import math

from axes.backends import AxesStandaloneBackend
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_ip_address, get_client_username
from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework import exceptions, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from .errors import JsonErrorsMixin
from .middleware import is_api
from .throttling import ClientIPThrottle, UsernameThrottle


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' check, first in AUTHENTICATION_BACKENDS: refuses a locked-out client before any hashing.

    A call without a request (``Client.login()`` in tests, a script) has no client to count: it is let through to
    the next backend rather than refused with an error as axes' own backend does."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def _live_attempts(request: HttpRequest | None) -> list[dict]:
    """axes' failure records (not yet expired) for the request's IP address and for the username it tries."""
    from axes.models import AccessAttempt

    if request is None:
        return []
    ip = getattr(request, "axes_ip_address", None) or get_client_ip_address(request)
    try:
        username = get_client_username(request)
    except Exception:  # an unreadable body: count by IP only
        username = None
    match = Q(ip_address=ip) if ip else Q(pk__in=[])
    if isinstance(username, str) and username:
        match |= Q(username=username)
    rows = AccessAttempt.objects.filter(match, expiration__expires_at__gt=timezone.now())
    return list(rows.values("ip_address", "username", "failures_since_start", "attempt_time"))


def _failures(rows: list[dict], ip: str | None, username: str | None) -> int:
    """As axes counts them with AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]: the larger of the two sums."""
    by_ip = sum(r["failures_since_start"] for r in rows if ip and r["ip_address"] == ip)
    by_user = sum(r["failures_since_start"] for r in rows if username and r["username"] == username)
    return max(by_ip, by_user)


def cooloff_for(failures: int) -> dt.timedelta:
    """The base cool-off, doubled for every failure past the limit, capped."""
    base = settings.FACEACCESS_LOGIN_COOLOFF_SECONDS
    cap = settings.FACEACCESS_LOGIN_COOLOFF_MAX_SECONDS
    extra = max(0, failures - settings.FACEACCESS_LOGIN_FAILURE_LIMIT)
    seconds = cap if extra >= 64 else min(cap, base * 2**extra)
    return dt.timedelta(seconds=seconds)


def lockout_cooloff(request: HttpRequest | None) -> dt.timedelta:
    """AXES_COOLOFF_TIME: how long the failures of this request's IP address / username are remembered."""
    rows = _live_attempts(request)
    if not rows:
        return cooloff_for(0)
    ip = getattr(request, "axes_ip_address", None) or get_client_ip_address(request)
    try:
        username = get_client_username(request)
    except Exception:
        username = None
    return cooloff_for(_failures(rows, ip, username))


def retry_after_seconds(request: HttpRequest) -> int:
    """Seconds until the request's IP address and username are no longer locked out (at least 1)."""
    rows = _live_attempts(request)
    cooloff = lockout_cooloff(request)
    if not rows:
        return max(1, math.ceil(cooloff.total_seconds()))
    latest = max(r["attempt_time"] for r in rows)
    return max(1, math.ceil((latest + cooloff - timezone.now()).total_seconds()))


def _message(seconds: int) -> str:
    wait = f"{seconds} s" if seconds < 120 else f"{math.ceil(seconds / 60)} min"
    return (f"too many failed logins from this address or for this account: try again in {wait} "
            "(every attempt before then doubles the wait)")


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with Retry-After (JSON under /api/, text elsewhere)."""
    seconds = retry_after_seconds(request)
    if is_api(request):
        response = JsonResponse({"error": "locked_out", "detail": _message(seconds)}, status=429)
    else:
        response = HttpResponse(_message(seconds).capitalize() + ".\n", status=429,
                                content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(seconds)
    return response


class LockedOut(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"

    def __init__(self, seconds: int):
        super().__init__(detail=_message(seconds), code=self.default_code)
        self.wait = seconds  # DRF's handler turns it into Retry-After


class ObtainTokenView(JsonErrorsMixin, GenericAPIView):
    """``POST /api/v1/auth/token/`` with ``username`` and ``password``: a new API token (django-rest-knox: only its
    hash is stored; it expires after FACEACCESS_TOKEN_TTL_HOURS). Throttled per client IP and per username (429
    before the password is looked at), and counted by django-axes like the console's login (429 once locked
    out)."""

    throttle_classes = [ClientIPThrottle, UsernameThrottle]
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
            if getattr(request, "axes_locked_out", False):
                raise LockedOut(retry_after_seconds(request)) from None
            raise
        user = serializer.validated_data["user"]
        # A token is a login: axes logs it and, as after a console login, forgets the earlier failures.
        AxesProxyHandler.user_logged_in(sender=type(self), request=request, user=user)
        instance, token = AuthToken.objects.create(user)
        return Response({"token": token, "expiry": instance.expiry})
