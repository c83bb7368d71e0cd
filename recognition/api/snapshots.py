"""``POST /api/v1/snapshots/``: a camera hands in a photo and (optionally) waits for the decision."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from recognition.models import AccessEvent, Camera, snapshot_upload_to

from .authentication import CameraKeyAuthentication, IsActiveCamera
from .errors import ApiError, JsonErrorsMixin
from .serializers import AccessEventSerializer, EventAcceptedSerializer
from .uploads import ImageUpload, check_content_length, read_image_upload

MAX_KEY_LEN = AccessEvent._meta.get_field("idempotency_key").max_length


def max_wait_s() -> float:
    return float(getattr(settings, "FACEACCESS_MAX_WAIT_SECONDS", 10.0))


def parse_wait(raw: str | None) -> float:
    if raw in (None, ""):
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        raise ApiError("invalid_wait", f"wait must be a number of seconds, got {raw!r}") from None
    if not 0.0 <= wait <= max_wait_s():
        raise ApiError("invalid_wait", f"wait must be between 0 and {max_wait_s():g} seconds")
    return wait


def parse_captured_at(raw: str | None):
    if raw in (None, ""):
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise ApiError("invalid_captured_at", f"captured_at must be an ISO 8601 date-time, got {raw!r}")
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return value


def enqueue_snapshot(event_id: int) -> None:
    from recognition.tasks import process_snapshot

    process_snapshot.enqueue(event_id)


def create_event(camera: Camera, upload: ImageUpload, key: str, captured_at) -> AccessEvent:
    """Store the file and the row together: if the row does not commit, the file is removed."""
    event = AccessEvent(
        camera=camera, site_id=camera.site_id, received_at=timezone.now(), captured_at=captured_at,
        idempotency_key=key, image_width=upload.width, image_height=upload.height,
    )
    storage = AccessEvent._meta.get_field("snapshot").storage
    name = storage.save(snapshot_upload_to(event, f"snapshot.{upload.extension}"), ContentFile(upload.data))
    try:
        with transaction.atomic():
            event.snapshot.name = name
            event.save()
            transaction.on_commit(lambda: enqueue_snapshot(event.pk))
        return event
    except IntegrityError:
        storage.delete(name)
        existing = AccessEvent.objects.filter(camera=camera, idempotency_key=key).first() if key else None
        if existing is None:
            raise
        return existing  # the same key raced in from a retry: one event, not two
    except BaseException:
        storage.delete(name)
        raise


def wait_for(event: AccessEvent, seconds: float) -> AccessEvent:
    deadline = time.monotonic() + seconds
    delay = 0.02
    while event.status == AccessEvent.Status.PENDING and time.monotonic() < deadline:
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.2)
        event.status = AccessEvent.objects.filter(pk=event.pk).values_list("status", flat=True).first()
    if event.status != AccessEvent.Status.PENDING:
        event = AccessEvent.objects.select_related("person").prefetch_related("faces").get(pk=event.pk)
    return event


class SnapshotView(JsonErrorsMixin, APIView):
    authentication_classes = [CameraKeyAuthentication]
    permission_classes = [IsActiveCamera]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary="Post a camera snapshot",
        parameters=[
            OpenApiParameter("wait", float, description="Seconds (at most 10 by default) to wait for the decision.")
        ],
        request=inline_serializer(
            "SnapshotUpload",
            {
                "image": serializers.FileField(help_text="JPEG, PNG or WebP."),
                "captured_at": serializers.DateTimeField(required=False),
                "idempotency_key": serializers.CharField(required=False, max_length=MAX_KEY_LEN),
            },
        ),
        responses={
            200: OpenApiResponse(AccessEventSerializer, description="Decided within ?wait."),
            202: OpenApiResponse(EventAcceptedSerializer, description="Accepted; poll the url."),
        },
    )
    def post(self, request):
        camera: Camera = request.auth
        Camera.objects.filter(pk=camera.pk).update(last_seen_at=timezone.now())
        wait = parse_wait(request.query_params.get("wait"))
        check_content_length(request)
        key = str(request.data.get("idempotency_key") or "").strip()
        if len(key) > MAX_KEY_LEN:
            raise ApiError("invalid_idempotency_key", f"idempotency_key is longer than {MAX_KEY_LEN} characters")
        captured_at = parse_captured_at(request.data.get("captured_at"))
        event = AccessEvent.objects.filter(camera=camera, idempotency_key=key).first() if key else None
        replayed = event is not None
        if event is None:
            event = create_event(camera, read_image_upload(request), key, captured_at)
        response = self.answer(request, wait_for(event, wait))
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @staticmethod
    def answer(request, event: AccessEvent) -> Response:
        if event.status == AccessEvent.Status.PENDING:
            url = reverse("recognition-api:accessevent-detail", args=[event.pk], request=request)
            body = {"id": event.pk, "url": url, "status": event.status}
            return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})
        return Response(AccessEventSerializer(event, context={"request": request}).data)
