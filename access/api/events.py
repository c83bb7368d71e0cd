"""``GET /api/v1/events/`` and ``/events/<id>/``: the access log (staff: all; a camera: its own)."""

from __future__ import annotations

import datetime as dt

from django.http import FileResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from knox.auth import TokenAuthentication
from rest_framework import viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action

from access import decisions
from access.filters import LIVENESS_CHOICES, by_liveness
from access.models import AccessEvent, faces_without_vectors
from faceaccess import roles
from faceaccess.api.base import Pages
from faceaccess.api.errors import ApiError, JsonErrorsMixin

from .authentication import CameraKeyAuthentication, HasRoleOrCamera, camera_of
from .serializers import AccessEventSerializer

_INT_FILTERS = {"camera": "camera_id", "site": "site_id", "person": "person_id"}
_CHOICE_FILTERS = {"decision": list(decisions.EVENT_DECISIONS), "status": AccessEvent.Status.values,
                   "reason_code": list(decisions.REASON_CODES)}
_LIVENESS = [value for value, _ in LIVENESS_CHOICES]


def _when(name: str, raw: str):
    """An aware date-time, or 400 ``invalid_filter``: for junk, an offset out of range (``+99:00``) and a moment
    that leaves the years 1..9999 once in UTC (``9999-12-31T23:59:59-23:59``), which the database cannot take."""
    try:
        value = parse_datetime(raw) if raw else None
        if value is not None:
            value = timezone.make_aware(value) if timezone.is_naive(value) else value
            value.astimezone(dt.UTC)  # raises when UTC falls outside years 1..9999
    except (ValueError, OverflowError):
        value = None
    if value is None:
        raise ApiError("invalid_filter", f"{name} must be an ISO 8601 date-time, got {raw!r}")
    return value


def filter_events(queryset, params):
    for name, column in _INT_FILTERS.items():
        if params.get(name):
            if not params[name].isdigit():
                raise ApiError("invalid_filter", f"{name} must be an id, got {params[name]!r}")
            queryset = queryset.filter(**{column: int(params[name])})
    for name, allowed in _CHOICE_FILTERS.items():
        if params.get(name):
            if params[name] not in allowed:
                raise ApiError("invalid_filter", f"{name} must be one of {', '.join(allowed)}")
            queryset = queryset.filter(**{name: params[name]})
    if params.get("liveness"):
        if params["liveness"] not in _LIVENESS:
            raise ApiError("invalid_filter", f"liveness must be one of {', '.join(_LIVENESS)}")
        queryset = by_liveness(queryset, params["liveness"])
    if params.get("since"):
        queryset = queryset.filter(received_at__gte=_when("since", params["since"]))
    if params.get("until"):
        queryset = queryset.filter(received_at__lt=_when("until", params["until"]))
    return queryset


_FILTER_DOCS = [
    OpenApiParameter("camera", int),
    OpenApiParameter("site", int),
    OpenApiParameter("person", int),
    OpenApiParameter("decision", str, enum=list(decisions.EVENT_DECISIONS)),
    OpenApiParameter("status", str, enum=AccessEvent.Status.values),
    OpenApiParameter("reason_code", str, enum=list(decisions.REASON_CODES),
                     description="presentation_attack: denied as a print or a screen (liveness enforced)"),
    OpenApiParameter("liveness", str, enum=_LIVENESS,
                     description="the deciding face's live score against the site's liveness threshold"),
    OpenApiParameter("since", str, description="ISO 8601; received at or after"),
    OpenApiParameter("until", str, description="ISO 8601; received before"),
]


@extend_schema_view(list=extend_schema(parameters=_FILTER_DOCS))
class AccessEventViewSet(JsonErrorsMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = AccessEventSerializer
    authentication_classes = [CameraKeyAuthentication, TokenAuthentication, SessionAuthentication]
    permission_classes = [HasRoleOrCamera]
    pagination_class = Pages

    def get_queryset(self):
        queryset = AccessEvent.objects.select_related("person").prefetch_related(faces_without_vectors())
        camera = camera_of(self.request)
        if camera is not None:
            queryset = queryset.filter(camera=camera)
        if self.action == "list":
            queryset = filter_events(queryset, self.request.query_params)
        return queryset

    @extend_schema(responses={(200, "image/*"): bytes})
    @action(detail=True, methods=["get"], authentication_classes=[TokenAuthentication, SessionAuthentication],
            permission_classes=[roles.HasRole])
    def snapshot(self, request, pk=None):
        """The stored snapshot (staff only: it is personal data)."""
        event = self.get_object()
        if not event.snapshot:
            raise ApiError("no_snapshot", "this event has no stored snapshot", 404)
        return FileResponse(event.snapshot.open("rb"))
