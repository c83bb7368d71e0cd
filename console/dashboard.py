"""The dashboard: today's decisions, the latest events (live), cameras and the worker's health."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count
from django.shortcuts import render
from django.utils import timezone

from access import decisions
from access.models import AccessEvent, Camera, faces_without_vectors
from faceaccess.health import queue_lengths, workers_alive

from . import inbox
from .base import role_required

LATEST = 12


def _today_start() -> dt.datetime:
    now = timezone.localtime()
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _live_context() -> dict:
    today = AccessEvent.objects.filter(received_at__gte=_today_start())
    counts = dict(today.filter(status="done").values_list("decision").annotate(n=Count("id")))
    return {
        "counts": [(d, counts.get(d, 0)) for d in decisions.EVENT_DECISIONS],
        "failed_today": today.filter(status="failed").count(),
        "pending": AccessEvent.objects.filter(status="pending").count(),
        "latest": list(
            AccessEvent.objects.select_related("site", "camera", "person").prefetch_related(
                faces_without_vectors())[:LATEST]
        ),
        "cameras": list(Camera.objects.select_related("site", "stream_status").order_by("-last_seen_at", "name")[:20]),
    }


@role_required()
def dashboard(request):
    return render(request, "console/dashboard.html", {**_live_context(), "attention": inbox.needs_attention(),
                                                      "first_steps": inbox.first_steps()})


@role_required()
def dashboard_live(request):
    """The live part of the dashboard, polled by htmx."""
    return render(request, "console/_dashboard_live.html", _live_context())


@role_required()
def worker_status(request):
    """Worker health and queue length (slower: a broker round trip), polled on its own."""
    return render(request, "console/_worker.html", {"workers": workers_alive(), "queues": queue_lengths()})
