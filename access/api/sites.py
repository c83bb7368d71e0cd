"""Sites and cameras (staff only). A camera's API key is returned once, at creation or rotation."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from access.cameras import rotate_webhook_secret
from access.models import Camera, Site
from faceaccess.api.base import RoleAPIMixin

from .serializers import (
    CameraCreatedSerializer,
    CameraKeySerializer,
    CameraSecretSerializer,
    CameraSerializer,
    SiteSerializer,
)


class SiteViewSet(RoleAPIMixin, viewsets.ModelViewSet):
    """Sites; ``PATCH {"match_threshold": 0.9}`` tunes the identification threshold."""

    serializer_class = SiteSerializer
    queryset = Site.objects.all()


class CameraViewSet(RoleAPIMixin, viewsets.ModelViewSet):
    serializer_class = CameraSerializer

    def get_queryset(self):
        queryset = Camera.objects.select_related("site", "stream_status").prefetch_related("allowed_people")
        site = self.request.query_params.get("site", "")
        return queryset.filter(site_id=int(site)) if site.isdigit() else queryset

    @extend_schema(responses={201: CameraCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            camera = Camera(**{k: v for k, v in serializer.validated_data.items() if k != "allowed_people"})
            key = camera.set_new_key()
            camera.save()
            camera.allowed_people.set(serializer.validated_data.get("allowed_people", []))
        camera.api_key = key
        data = CameraCreatedSerializer(camera, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: CameraKeySerializer})
    @action(detail=True, methods=["post"], url_path="rotate-key")
    def rotate_key(self, request, pk=None):
        """Replace the camera's key; the old one stops working at once. The webhook secret is not shown."""
        camera = self.get_object()
        key = camera.set_new_key()
        camera.save(update_fields=["key_prefix", "key_hash"])
        camera.api_key = key
        return Response(CameraKeySerializer(camera, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses={200: CameraSecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-webhook-secret")
    def rotate_secret(self, request, pk=None):
        """Replace the webhook signing secret (shown once in this answer); the old one no longer verifies."""
        camera = self.get_object()
        camera.webhook_secret = rotate_webhook_secret(camera)
        return Response(CameraSecretSerializer(camera, context=self.get_serializer_context()).data)
