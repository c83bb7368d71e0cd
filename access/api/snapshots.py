"""``POST /api/v1/snapshots/``: a camera hands in a photo and (optionally) waits for the decision."""

from __future__ import annotations

import datetime as dt
import functools
import time

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from access.models import CAPTURED_AT_MAX_AHEAD, CAPTURED_AT_MIN, AccessEvent, Camera
from access.rules import credentials, factors
from access.snapshots.card_only import decide_card
from access.snapshots.intake import create_event, requeue_if_never_queued, wait_for
from faceaccess.api.errors import ApiError, JsonErrorsMixin
from faceaccess.api.throttling import SKIP_AFTER_FAILURE_S, CameraThrottle
from faceaccess.api.uploads import check_content_length, read_image_upload
from faceaccess.health import queue_lengths
from faceaccess.queries import one_or_none
from faceaccess.uploads import ImageUpload

from .authentication import CameraKeyAuthentication, IsActiveCamera
from .serializers import AccessEventSerializer, EventAcceptedSerializer

MAX_KEY_LEN = AccessEvent._meta.get_field("idempotency_key").max_length
LAST_SEEN_EVERY = dt.timedelta(seconds=5)  # a camera's last_seen_at is refreshed at most this often


def parse_wait(raw: str | None) -> float:
    if raw in (None, ""):
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        raise ApiError("invalid_wait", f"wait must be a number of seconds, got {raw!r}") from None
    limit = settings.FACEACCESS_MAX_WAIT_SECONDS
    if not 0.0 <= wait <= limit:
        raise ApiError("invalid_wait", f"wait must be between 0 and {limit:g} seconds")
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
        try:
            value = timezone.make_aware(value, timezone.get_default_timezone())
        except (OverflowError, ValueError):
            value = None
    latest = timezone.now() + CAPTURED_AT_MAX_AHEAD
    if value is None or not CAPTURED_AT_MIN <= value <= latest:
        raise ApiError(
            "invalid_captured_at",
            f"captured_at must lie between {CAPTURED_AT_MIN:%Y-%m-%d} and a day from now "
            f"({latest:%Y-%m-%dT%H:%M}Z), got {raw!r}: check the camera's clock",
        )
    return value


def sealed_credential(request) -> str | None:
    """The door's PIN / card number fields, checked for shape and sealed for the worker (access.rules); a 400
    that never repeats what was sent when one is malformed."""
    values = {}
    for name, clean in (("pin", credentials.clean_pin), ("card", credentials.clean_card)):
        raw = request.data.get(name)
        if raw in (None, ""):
            continue
        try:
            values[name] = clean(raw)
        except credentials.CredentialError as exc:
            raise ApiError(f"invalid_{name}", str(exc)) from None
    return credentials.seal(values.get("pin"), values.get("card"))


@functools.cache
def snapshot_queue() -> str:
    """The Celery queue that snapshot jobs are routed to (CELERY_TASK_ROUTES: "gpu")."""
    from faceaccess.celery import app

    return app.amqp.router.route({}, "access.tasks.process_snapshot")["queue"].name



def refuse_over_site_resolution(camera: Camera, upload: ImageUpload) -> None:
    """413 before anything is stored when the snapshot has more pixels than the camera's site accepts: a larger
    frame costs the engine (one worker for every door) more time, and a door camera never needs it."""
    limit = camera.site.max_snapshot_pixels  # the site came with the camera (Camera.from_key)
    pixels = upload.width * upload.height
    if limit and pixels > limit:
        raise ApiError("too_many_pixels",
                       f"the snapshot is {upload.width}x{upload.height} = {pixels:,} pixels; site cameras may send "
                       f"at most {limit:,} (the site's max_snapshot_pixels): use the camera's smaller stream",
                       status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)

class _QueueCheck:
    """Process-wide: until when the queue's depth goes unasked because the broker last did not answer (a frozen
    Redis then costs one request one FACEACCESS_BROKER_TIMEOUT more, not every request)."""

    skip_until = 0.0


class SnapshotView(JsonErrorsMixin, APIView):
    authentication_classes = [CameraKeyAuthentication]
    permission_classes = [IsActiveCamera]
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [CameraThrottle]  # per camera: FACEACCESS_SNAPSHOT_RATE, then 429 + Retry-After

    def initial(self, request, *args, **kwargs):
        self.started = time.monotonic()  # ?wait bounds the whole request, authentication and throttling included
        super().initial(request, *args, **kwargs)

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
                "pin": serializers.CharField(
                    required=False, help_text="The PIN typed at the door (4-12 digits), for a `face_pin` door. "
                    "Checked against the person the face matches; never stored, logged or echoed."),
                "card": serializers.CharField(
                    required=False, help_text="The card number the door's reader read (4-64 letters or digits), "
                    "for a `face_card` or `card_or_face` door. Only its last 4 digits are ever shown. On a "
                    "`card_or_face` door it may come alone, without `image`: decided at once."),
            },
        ),
        responses={
            200: OpenApiResponse(AccessEventSerializer, description="Decided within ?wait."),
            202: OpenApiResponse(EventAcceptedSerializer, description="Accepted; poll the url."),
            429: OpenApiResponse(description="Too many snapshots from this camera; see Retry-After."),
            503: OpenApiResponse(description="overloaded: the queue holds FACEACCESS_MAX_QUEUE jobs, nothing was "
                                             "stored; queue_unavailable: stored (id, url) but the job queue did not "
                                             "take it. Either way retry with the same idempotency_key after "
                                             "Retry-After seconds."),
        },
    )
    def post(self, request):
        camera: Camera = request.auth
        now = timezone.now()
        if camera.last_seen_at is None or now - camera.last_seen_at >= LAST_SEEN_EVERY:
            # Not on every post: each UPDATE is a commit that waits for the disk (~2 ms of the door's time).
            Camera.objects.filter(pk=camera.pk).update(last_seen_at=now)
        wait = parse_wait(request.query_params.get("wait"))
        check_content_length(request)
        key = str(request.data.get("idempotency_key") or "").strip()
        if len(key) > MAX_KEY_LEN:
            raise ApiError("invalid_idempotency_key", f"idempotency_key is longer than {MAX_KEY_LEN} characters")
        if not key.isprintable():  # a NUL byte is refused by PostgreSQL (a 500); other controls are junk too
            raise ApiError("invalid_idempotency_key", "idempotency_key must not contain control characters")
        captured_at = parse_captured_at(request.data.get("captured_at"))
        sealed = sealed_credential(request)
        event = one_or_none(AccessEvent.objects.filter(camera=camera, idempotency_key=key)) if key else None
        if "image" not in request.FILES and request.data.get("card") and event is None \
                and self.card_or_face(camera):  # a card alone: nothing for the engine, decided here at once
            event, created = decide_card(camera, credentials.clean_card(request.data["card"]), key, captured_at)
            response = self.answer(request, event)
            if not created:
                response["Idempotent-Replayed"] = "true"
            return response
        created = False
        if event is None or (event.status == AccessEvent.Status.FAILED and event.enqueue_failed):
            refused = self.overloaded(request, event)  # before anything is stored or queued
            if refused is not None:
                return refused
        if event is None:
            upload = read_image_upload(request)
            refuse_over_site_resolution(camera, upload)
            event, created = create_event(camera, upload, key, captured_at, sealed)
        if not created:  # a replay, also when it lost an insert race to the request that created the event
            event = requeue_if_never_queued(event, sealed)  # the retry's PIN / card go with it
        if event.status == AccessEvent.Status.FAILED and event.enqueue_failed:
            response = self.not_queued(request, event)
        else:
            left = max(0.0, wait - (time.monotonic() - self.started))
            response = self.answer(request, wait_for(event, left))
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response

    @staticmethod
    def card_or_face(camera: Camera) -> bool:
        return (camera.verification or camera.site.verification) == factors.CARD_OR_FACE

    @staticmethod
    def overloaded(request, event: AccessEvent | None) -> Response | None:
        """503 + Retry-After when FACEACCESS_MAX_QUEUE jobs or more already wait in the snapshot queue, else None.
        A broker that does not answer (within FACEACCESS_BROKER_TIMEOUT) is not taken for "overloaded": the
        snapshot then goes on to be stored and its publish fails the usual way (503 queue_unavailable), and the
        queue goes unasked for the next few seconds."""
        bound = settings.FACEACCESS_MAX_QUEUE
        if bound <= 0 or time.monotonic() < _QueueCheck.skip_until:
            return None
        queue = snapshot_queue()
        lengths = queue_lengths((queue,))
        if lengths is None:
            _QueueCheck.skip_until = time.monotonic() + SKIP_AFTER_FAILURE_S
            return None
        if lengths[queue] < bound:
            return None
        retry_after = settings.FACEACCESS_BROKER_RETRY_AFTER
        body = {"error": "overloaded",
                "detail": f"{lengths[queue]} jobs wait in the {queue!r} queue (at most {bound} may): the snapshot "
                          f"was not stored; retry in {retry_after} s"}
        headers = {"Retry-After": str(retry_after)}
        if event is not None:  # a retry of a snapshot stored earlier that was never queued: still stored
            body.update(id=event.pk, url=reverse("api:accessevent-detail", args=[event.pk], request=request))
            body["detail"] = body["detail"].replace("was not stored", f"stays stored as event {event.pk}, not queued")
            headers["Idempotent-Replayed"] = "true"
        return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers=headers)

    @staticmethod
    def not_queued(request, event: AccessEvent) -> Response:
        """503 + Retry-After: the broker did not take the job in time (or at all). The event and its photo stay
        stored, marked ``enqueue_failed``: a retry with the same idempotency key queues that event again."""
        url = reverse("api:accessevent-detail", args=[event.pk], request=request)
        retry_after = settings.FACEACCESS_BROKER_RETRY_AFTER
        key = "the same idempotency_key" if event.idempotency_key else "an idempotency_key next time"
        body = {
            "error": "queue_unavailable",
            "detail": f"the snapshot is stored as event {event.pk} but the job queue did not take it; "
                      f"retry with {key} in {retry_after} s",
            "id": event.pk, "url": url,
        }
        return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(retry_after)})

    @staticmethod
    def answer(request, event: AccessEvent) -> Response:
        if event.status == AccessEvent.Status.PENDING:
            url = reverse("api:accessevent-detail", args=[event.pk], request=request)
            body = {"id": event.pk, "url": url, "status": event.status}
            return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})
        return Response(AccessEventSerializer(event, context={"request": request}).data)
