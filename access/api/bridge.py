"""The camera bridge's two endpoints (``Authorization: Bridge <FACEACCESS_BRIDGE_TOKEN>``), nobody else's:

- ``GET /api/v1/bridge/cameras/``: the active cameras with a stream, each with its source URL and its
  credentials (only here: the bridge must open it), how to sample it, and the key to post its frames with
  (derived from the token, :mod:`access.bridge.keys`);
- ``POST /api/v1/bridge/status/``: what the bridge sees of each stream (connected, frames/s, last error, last
  frame, reconnects), kept per camera and shown on the dashboard and the camera's page; a stream that goes down or
  comes back announces the camera's MQTT availability.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from access.bridge import keys
from access.models import Camera, StreamStatus
from access.outputs import mqtt
from faceaccess.api.errors import JsonErrorsMixin

from .authentication import MachinePrincipal

SCHEME = "Bridge"


class BridgePrincipal(MachinePrincipal):
    def __str__(self) -> str:
        return "camera bridge"


class BridgeTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        scheme, _, token = get_authorization_header(request).decode("latin-1").partition(" ")
        if scheme.lower() != SCHEME.lower():
            return None
        expected = settings.FACEACCESS_BRIDGE_TOKEN or ""
        if not expected or not hmac.compare_digest(token.strip().encode(), expected.encode()):
            raise exceptions.AuthenticationFailed("wrong bridge token", code="invalid_bridge_token")
        return BridgePrincipal(), None

    def authenticate_header(self, request) -> str:
        return SCHEME


class IsBridge(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, BridgePrincipal)


def bridge_camera(camera: Camera) -> dict:
    return {
        "id": camera.pk, "name": camera.name, "site": camera.site_id,
        "source": camera.stream_url, "username": camera.stream_username, "password": camera.stream_password,
        "kind": camera.stream_kind, "fps": camera.stream_fps, "motion_threshold": camera.motion_threshold,
        "roi": camera.stream_roi, "cooldown_seconds": camera.grant_cooldown_seconds,
        "api_key": keys.bridge_key(settings.FACEACCESS_BRIDGE_TOKEN, camera.pk),
    }


class BridgeView(JsonErrorsMixin, APIView):
    authentication_classes = [BridgeTokenAuthentication]
    permission_classes = [IsBridge]


class BridgeCamerasView(BridgeView):
    @extend_schema(summary="The camera bridge's cameras (bridge token only)", responses={200: dict})
    def get(self, request):
        cameras = Camera.objects.filter(active=True).exclude(stream_url="").order_by("pk")
        return Response({"cameras": [bridge_camera(c) for c in cameras]})


class StreamReport(serializers.Serializer):
    id = serializers.IntegerField(min_value=1)
    connected = serializers.BooleanField()
    fps = serializers.FloatField(min_value=0, max_value=1000)
    last_error = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")
    last_frame_at = serializers.DateTimeField(allow_null=True, required=False, default=None)
    reconnects = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, default=0)
    posted = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, default=0)


class StatusReport(serializers.Serializer):
    cameras = StreamReport(many=True, allow_empty=True)


class BridgeStatusView(BridgeView):
    @extend_schema(summary="The camera bridge reports its streams (bridge token only)", request=StatusReport,
                   responses={200: dict})
    def post(self, request):
        report = StatusReport(data=request.data)
        report.is_valid(raise_exception=True)
        now = timezone.now()
        flipped = []
        with transaction.atomic():
            known = set(Camera.objects.filter(pk__in=[r["id"] for r in report.validated_data["cameras"]])
                        .values_list("pk", flat=True))
            for row in report.validated_data["cameras"]:
                if row["id"] not in known:
                    continue
                status, _ = StreamStatus.objects.select_for_update().get_or_create(camera_id=row["id"])
                if status.connected != row["connected"] or status.reported_at is None:
                    flipped.append(row["id"])
                for field in ("connected", "fps", "last_error", "last_frame_at", "reconnects", "posted"):
                    setattr(status, field, row[field])
                status.reported_at = now
                status.save()
        for camera_id in flipped:
            transaction.on_commit(lambda c=camera_id: mqtt.queue_announce(c))
        return Response({"updated": len(known)})
