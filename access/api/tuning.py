"""Threshold tuning through the API (admins): what the console's threshold page shows."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from access.models import Site
from access.review import tuning
from access.thresholds import current_threshold
from faceaccess import roles

from .base import RoleAPI, positive, threshold_number


class SiteTuningView(RoleAPI):
    read_roles = roles.OVERSEERS  # auditors read it too

    @extend_schema(parameters=[OpenApiParameter("candidate", float), OpenApiParameter("far", float),
                               OpenApiParameter("last", int)])
    def get(self, request, pk: int):
        """What the site's enrolled photos say about a threshold, and which of the last events a candidate
        threshold would decide differently (replayed from stored inputs)."""
        site = get_object_or_404(Site, pk=pk)
        threshold = current_threshold(site)
        candidate = threshold_number(request.query_params.get("candidate"), threshold)
        far = threshold_number(request.query_params.get("far"), 0.01)
        d = tuning.site_distances(site)
        replay = tuning.what_if(site, candidate, positive(request.query_params.get("last"), 100))
        return Response({
            "threshold": threshold, "candidate": candidate, "model": d.model, "people": d.people,
            "embeddings": d.embeddings,
            "identification_far": {"threshold": d.false_accept(threshold),
                                   "candidate": d.false_accept(candidate)},
            "genuine_accept": {"threshold": d.genuine_accept(threshold),
                               "candidate": d.genuine_accept(candidate)},
            "suggested": {"far_target": far, "threshold": d.suggest(far)},
            "what_if": {"examined": replay.examined, "changed": [
                {"event": c["event"].pk, "was": c["was"], "now": c["now"], "person": c["person"],
                 "reason": c["reason"]} for c in replay.changed]},
        })
