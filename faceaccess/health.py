"""Liveness/readiness probe for load balancers, docker-compose and `make run`."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from . import redis_conn


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the reason is reported, not raised
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        redis_conn.client().ping()
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {exc.__class__.__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ok" if ok else "degraded", **checks}, status=200 if ok else 503)


# A queue's messages sent with a priority above 0 wait in lists of their own beside the queue's list, named as
# kombu's Redis transport names them (queue + "\x06\x16" + step, for its default steps 3, 6 and 9).
PRIORITY_LISTS = tuple(f"\x06\x16{step}" for step in (3, 6, 9))


def queue_lengths(queues: tuple[str, ...] = ("gpu", "celery")) -> dict[str, int] | None:
    """Messages waiting in each Celery queue (Redis lists, those of every priority), or None when the broker does
    not answer."""
    names = [[name, *(name + suffix for suffix in PRIORITY_LISTS)] for name in queues]
    try:
        with redis_conn.client().pipeline() as pipe:
            for lists in names:
                for name in lists:
                    pipe.llen(name)
            lengths = iter(pipe.execute())
    except Exception:
        return None
    return {queue: sum(int(next(lengths)) for _ in lists) for queue, lists in zip(queues, names, strict=True)}


def workers_alive(timeout: float = 0.5) -> list[str] | None:
    """Names of the Celery workers that answered a ping, or None when the broker does not answer."""
    from faceaccess.celery import app

    try:
        replies = app.control.ping(timeout=timeout)
    except Exception:
        return None
    return sorted(name for reply in replies for name in reply)
