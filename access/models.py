"""Who may enter where, and what happened: sites, cameras, access grants, and access events with one
row per face."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from pgvector.django import VectorField

from faceaccess import outbound
from faceaccess.queries import one_or_none
from faceaccess.validity import ordered_validity
from recognition.models import EMBEDDING_DIM, DetectedFace, StoredEmbedding

from . import decisions, liveness
from .bridge import keys as bridge_keys
from .bridge import sources as bridge_sources
from .rules import factors
from .thresholds import default_match_threshold, validate_threshold

KEY_PREFIX_LEN = 8
# A camera's clock is believed from 2000 on, and at most a day ahead of ours (the API checks both).
# The database refuses anything outside [CAPTURED_AT_MIN, CAPTURED_AT_DB_MAX) from any path, so no stored
# value can be one Python cannot read back (before year 1 or after 9999 in UTC) and break the access log.
CAPTURED_AT_MIN = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
CAPTURED_AT_DB_MAX = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
CAPTURED_AT_MAX_AHEAD = dt.timedelta(days=1)


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {value!r}") from None


class Site(models.Model):
    name = models.CharField(max_length=200, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    match_threshold = models.FloatField(
        blank=True,
        validators=[validate_threshold],
        help_text="Euclidean distance at or under which a face is accepted as a person; empty: the current "
        "embedder's identification threshold.",
    )
    # The model whose distances match_threshold is a number of; a switch of the embedder remaps it
    # (access.thresholds) and keeps a custom one of the old model here, restored if that model comes back.
    threshold_model = models.CharField(max_length=200, blank=True,
                                       help_text="The embedder the threshold belongs to (empty: the active one).")
    other_thresholds = models.JSONField(default=dict, blank=True,
                                        help_text="Thresholds set for other embedders, by model name.")
    threshold_note = models.TextField(blank=True, help_text="What the last model switch did to the threshold.")
    min_face_px = models.PositiveIntegerField(default=40, help_text="Smaller faces (shorter box side) are ignored.")
    min_detection_score = models.FloatField(
        default=0.9, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Less confident detections are ignored (0..1).",
    )
    detection_policy = models.CharField(
        max_length=20, choices=[("standard", "standard: faces of 80 px and more at full HD"),
                                ("small_faces", "small faces: 32 px and more at any size (slower on large images)"),
                                ("close", "close: people stand close, faces of 64 px and more at 640x480 "
                                          "(a quarter of the detection cost)")],
        default="standard",
        help_text="How hard to look for small, distant faces in large snapshots; a door where people stand close "
        "needs no more than standard. MODELS.md has the measured recall and cost.",
    )
    # Retention of door snapshots (the events themselves stay): strangers' faces briefly, recognised ones longer.
    retain_unknown_days = models.PositiveIntegerField(
        default=7, help_text="Days to keep snapshots (and face embeddings) of events with no recognised person."
    )
    retain_known_days = models.PositiveIntegerField(
        default=90, help_text="Days to keep snapshots (and face embeddings) of events with a recognised person."
    )
    # Passive liveness (access.liveness, README "Liveness"): whether a matched face must look live to be let in.
    liveness_policy = models.CharField(
        max_length=10, choices=[(decisions.LIVENESS_OFF, "off: not scored"),
                                (decisions.LIVENESS_MONITOR, "monitor: scored and recorded, decisions unchanged"),
                                (decisions.LIVENESS_ENFORCE, "enforce: a face under the threshold is denied")],
        default=liveness.DEFAULT_POLICY,
        help_text="Passive liveness against printed photos and screens held up to the camera. Watch the site's "
        "live scores in monitor before enforcing.")
    liveness_threshold = models.FloatField(
        default=liveness.DEFAULT_THRESHOLD, validators=[liveness.validate_liveness_threshold],
        help_text="A matched face whose live score (0..1) is under this is taken for a print or a screen.")
    verification = models.CharField(  # access.rules: the second factor of the site's doors
        max_length=20, choices=factors.MODE_CHOICES, default=factors.FACE,
        help_text="What a door of this site checks besides the face (a camera may set its own).")
    decision_deadline_seconds = models.PositiveIntegerField(
        default=30, help_text="A snapshot that reaches the worker later than this after it arrived ends 'expired' "
        "(logged, not decided): a door answer that late is useless. 0: never.")
    max_snapshot_pixels = models.PositiveIntegerField(
        default=3840 * 2160, help_text="Door snapshots with more pixels are refused (413): a door camera needs no "
        "more, and a larger frame costs the engine more time that other doors wait for. 0: only the server's "
        "own limits.")
    # Who may enter; ``person.sites`` is the other side.
    people = models.ManyToManyField(
        "enrollment.Person", through="AccessGrant", related_name="sites", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    # Django runs clean_fields() before clean(): fill the default first so full_clean() accepts an empty one.
    def clean_fields(self, exclude: object = None) -> None:
        self.fill_defaults()
        super().clean_fields(exclude)

    def save(self, *args: object, **kwargs: object) -> None:
        self.fill_defaults()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        liveness.check_policy(self.liveness_policy)

    def fill_defaults(self) -> None:
        """The one place a site's threshold default is filled in."""
        if self.match_threshold is None:
            self.match_threshold = default_match_threshold()
        if not self.threshold_model:
            from recognition.pipelines import current_embedder_name

            self.threshold_model = current_embedder_name()


class AccessGrant(models.Model):
    """Person may enter site (every camera of it, unless a camera's allow-list narrows it), optionally
    only between ``valid_from`` and ``valid_until``."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="grants")
    person = models.ForeignKey("enrollment.Person", on_delete=models.CASCADE, related_name="grants")
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["site_id", "person_id"]
        constraints = [
            models.UniqueConstraint(fields=["site", "person"], name="grant_one_per_site_person"),
            ordered_validity("grant_validity_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.person_id} may enter {self.site_id}"


def new_webhook_secret() -> str:
    return secrets.token_hex(32)


def validate_roi(value: object) -> None:
    """A region of interest: null, or [x0, y0, x1, y1] fractions of the frame with x0 < x1 and y0 < y1."""
    if value is None:
        return
    if (not isinstance(value, list) or len(value) != 4
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
        raise ValidationError("a region is [x0, y0, x1, y1], four numbers between 0 and 1")
    x0, y0, x1, y1 = value
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise ValidationError("a region is [x0, y0, x1, y1] with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")


def validate_mqtt_topic(value: str) -> None:
    if value and (any(c in value for c in "+#\0") or value.startswith("$") or any(ord(c) < 32 for c in value)):
        raise ValidationError("an MQTT topic to publish to has no wildcards (+, #), no control characters and "
                              "does not start with $")


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Camera(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="cameras")
    name = models.CharField(max_length=200)
    active = models.BooleanField(default=True)
    # The key is shown once; only its sha256 is kept, plus a prefix to find the row.
    key_prefix = models.CharField(max_length=KEY_PREFIX_LEN, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    # Empty = every active person of the site may pass; non-empty narrows it to these people.
    allowed_people = models.ManyToManyField("enrollment.Person", related_name="allowed_cameras", blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The door's outputs (access/outputs/): the webhook and the debounce of repeated grants.
    webhook_url = models.URLField(max_length=500, blank=True, validators=[outbound.validate_url],
                                  help_text="Optional: POST every decision here (JSON, signed with the secret).")
    webhook_secret = models.CharField(max_length=64, default=new_webhook_secret,
                                      help_text="HMAC-SHA256 key of the webhook's signature.")
    verification = models.CharField(
        max_length=20, choices=[("", "the site's"), *factors.MODE_CHOICES], blank=True, default="",
        help_text="What this door checks besides the face; empty: the site's setting.")
    debounce_seconds = models.PositiveIntegerField(
        default=10, help_text="The same person granted again within this many seconds is logged as a repeat "
        "and opens nothing (0: off).")
    # The camera bridge (access/bridge/): a stream the bridge reads and posts from, with the camera's own intake.
    # The URL is stored without its credentials, which live apart and never leave the server except to the bridge.
    stream_url = models.CharField(max_length=500, blank=True, help_text="rtsp://, http(s):// snapshot or MJPEG "
                                  "URL, or /dev/videoN, read by the camera bridge (credentials kept apart).")
    stream_kind = models.CharField(max_length=10, choices=bridge_sources.KIND_CHOICES, blank=True)
    stream_username = models.CharField(max_length=200, blank=True)
    stream_password = models.CharField(max_length=200, blank=True)
    stream_fps = models.FloatField(default=5.0, validators=[MinValueValidator(0.1), MaxValueValidator(30.0)],
                                   help_text="Frames per second the bridge looks at (a snapshot URL is polled "
                                   "this often).")
    motion_threshold = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="Per cent of the region's pixels that must change between two frames before anything is "
        "posted (0: no motion gate).")
    stream_roi = models.JSONField(null=True, blank=True, validators=[validate_roi],
                                  help_text="Region of interest (door zone) as [x0, y0, x1, y1] fractions of the "
                                  "frame; empty: the whole frame.")
    grant_cooldown_seconds = models.PositiveIntegerField(
        default=10, help_text="After a grant the bridge posts nothing from this camera for this long (the person "
        "is walking through).")
    # MQTT (access/outputs/mqtt.py): an optional lock driven directly on a grant.
    mqtt_unlock_topic = models.CharField(max_length=200, blank=True, validators=[validate_mqtt_topic],
                                         help_text="Optional: publish the unlock payload here on every grant "
                                         "(e.g. cmnd/door/POWER).")
    mqtt_unlock_payload = models.CharField(max_length=200, default="ON", blank=True)
    mqtt_lock_payload = models.CharField(max_length=200, default="OFF", blank=True,
                                         help_text="Published after the pulse (empty: nothing).")
    mqtt_pulse_seconds = models.FloatField(default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(600)])

    class Meta:
        ordering = ["site_id", "name"]
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="camera_name_unique_per_site")]

    def __str__(self) -> str:
        return f"{self.site} / {self.name}"

    def clean(self) -> None:
        if self.stream_url:
            try:
                self.stream_kind = bridge_sources.check(self.stream_url, self.stream_kind)
            except bridge_sources.BadSource as exc:
                raise ValidationError({"stream_url": str(exc)}) from None
        else:
            self.stream_kind = ""

    def set_new_key(self) -> str:
        """Give the camera a fresh key and return it in clear (the only time it exists)."""
        prefix = secrets.token_hex(KEY_PREFIX_LEN // 2)
        key = f"fa_{prefix}_{secrets.token_urlsafe(32)}"
        self.key_prefix, self.key_hash = prefix, hash_api_key(key)
        return key

    def check_key(self, key: str) -> bool:
        return hmac.compare_digest(self.key_hash, hash_api_key(key))

    @staticmethod
    def prefix_of(key: str) -> str | None:
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != "fa" or len(parts[1]) != KEY_PREFIX_LEN:
            return None
        return parts[1]

    @classmethod
    def from_key(cls, key: str) -> Camera | None:
        prefix = cls.prefix_of(key)
        if prefix and bridge_keys.is_bridge_prefix(prefix):  # the camera bridge posting for a camera with a stream
            camera_id = bridge_keys.camera_id_of(key, settings.FACEACCESS_BRIDGE_TOKEN)
            return one_or_none(cls.objects.select_related("site").filter(pk=camera_id).exclude(stream_url="")) \
                if camera_id else None
        camera = one_or_none(cls.objects.select_related("site").filter(key_prefix=prefix)) if prefix else None
        return camera if camera is not None and camera.check_key(key) else None


def snapshot_upload_to(instance: AccessEvent, filename: str) -> str:
    day = (instance.received_at or dt.datetime.now(dt.UTC)).strftime("%Y/%m/%d")
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "jpg"
    return f"snapshots/{day}/{uuid.uuid4().hex}.{ext}"


def _choices(words: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(w, w) for w in words]


class AccessEvent(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"
        EXPIRED = "expired"  # reached the worker too late for the door: logged, not decided

    # Events are the access log: they outlive cameras, sites and people (links become null).
    camera = models.ForeignKey(Camera, on_delete=models.SET_NULL, null=True, related_name="events")
    site = models.ForeignKey(Site, on_delete=models.SET_NULL, null=True, related_name="events")
    received_at = models.DateTimeField(db_index=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    snapshot = models.FileField(upload_to=snapshot_upload_to, max_length=255, blank=True)
    idempotency_key = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    reason = models.TextField(blank=True, help_text="Why processing failed, or why the decision was taken.")
    decision = models.CharField(max_length=10, choices=_choices(decisions.EVENT_DECISIONS), blank=True, db_index=True)
    # Failed only because the broker refused the job: the snapshot was never looked at, so a retry with the
    # same idempotency key queues it again rather than replaying the failure.
    enqueue_failed = models.BooleanField(default=False, help_text="Failed only because it could not be queued.")
    person = models.ForeignKey(
        "enrollment.Person", on_delete=models.SET_NULL, null=True, blank=True, related_name="access_events"
    )
    latency_ms = models.FloatField(null=True, blank=True, help_text="Received to processed.")
    threshold = models.FloatField(null=True, blank=True, help_text="The site threshold in force.")
    min_face_px = models.PositiveIntegerField(null=True, blank=True)
    min_detection_score = models.FloatField(null=True, blank=True)
    # The liveness rules in force and the deciding face's live score (null: not scored), so that the log can
    # show and filter it and a what-if replay decides with the same rules.
    liveness_policy = models.CharField(max_length=10, blank=True)
    liveness_threshold = models.FloatField(null=True, blank=True)
    liveness = models.FloatField(null=True, blank=True, help_text="Live score of the deciding face (0..1).")
    reason_code = models.CharField(max_length=32, blank=True, db_index=True,
                                   help_text="The decision's cause in one word when it has one "
                                             "(presentation_attack, liveness_unchecked).")
    # The door's second factor (access.rules) and what the credential check found: outcomes only ("PIN ok",
    # "card …1234"), never a PIN or a card number.
    verification = models.CharField(max_length=20, blank=True)
    second_factor = models.CharField(max_length=60, blank=True, help_text='"PIN ok / wrong / missing", "card …1234".')
    credential = models.JSONField(null=True, blank=True, help_text="The credential check's outcomes, for a replay.")
    model_name = models.CharField(max_length=100, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    image_width = models.PositiveIntegerField(null=True, blank=True)
    image_height = models.PositiveIntegerField(null=True, blank=True)
    # The first granted event of this person at this camera within its debounce window (this one is a repeat).
    repeat_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="repeats")
    # Where the time went, in milliseconds per stage (parse, store, insert, queue, decode, detect, embed, search,
    # decide, save, notify...), written by the web process and the worker: see access.snapshots.channel.STAGES.
    timings = models.JSONField(null=True, blank=True, help_text="Milliseconds per processing stage.")

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["camera", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="event_idempotency_unique_per_camera",
            ),
            models.CheckConstraint(
                condition=models.Q(captured_at__isnull=True)
                | models.Q(captured_at__gte=CAPTURED_AT_MIN, captured_at__lt=CAPTURED_AT_DB_MAX),
                name="event_captured_at_sane",
            ),
        ]
        indexes = [
            models.Index(fields=["site", "-received_at"], name="event_site_received_idx"),
            # A camera's snapshots still waiting (access.snapshots.intake.fair_priority, at every intake).
            models.Index(fields=["camera", "id"], condition=models.Q(status="pending"),
                         name="event_camera_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"event {self.pk} {self.status} {self.decision or '-'}"

    @property
    def best_distance(self) -> float | None:
        """The distance of the deciding face (see ``deciding_face``), not of a face the site ignored."""
        face = self.deciding_face
        return face.distance if face is not None else None

    @property
    def deciding_face(self) -> AccessEventFace | None:
        """The face the decision rests on (from prefetched faces when there are any): among the faces the site
        did not ignore (too small, low detection score), those whose own decision is the event's, nearest
        first. A nearer face that was ignored never stands in for it (the log and the CSV used to show one)."""
        considered = [f for f in self.faces.all() if f.decision != "ignored"]
        same = [f for f in considered if f.decision == self.decision] or considered
        return min(same, key=lambda f: (f.distance is None, f.distance or 0.0, f.index), default=None)


class AccessEventFace(DetectedFace):
    """One face of a snapshot: where it was (DetectedFace fields), who it was nearest, what was decided."""

    event = models.ForeignKey(AccessEvent, on_delete=models.CASCADE, related_name="faces")
    index = models.PositiveSmallIntegerField()
    nearest_person = models.ForeignKey(
        "enrollment.Person", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    distance = models.FloatField(null=True, blank=True)
    runner_up_person = models.ForeignKey(
        "enrollment.Person", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    runner_up_distance = models.FloatField(null=True, blank=True)
    # Distance to the nearest face a reviewer marked "not <nearest person>" (see ImpostorExample).
    impostor_distance = models.FloatField(null=True, blank=True)
    decision = models.CharField(max_length=10, choices=_choices(decisions.FACE_DECISIONS))
    reason = models.TextField(blank=True)
    # The probe itself (model: the event's), for reviews and the strangers page. Personal data.
    embedding = VectorField(dimensions=EMBEDDING_DIM, null=True, blank=True)
    # Set when the face was handled on the strangers page (enrolled or dismissed).
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["event_id", "index"]
        constraints = [models.UniqueConstraint(fields=["event", "index"], name="event_face_index_unique")]

    def __str__(self) -> str:
        return f"event {self.event_id} face {self.index}: {self.decision}"


class WebhookDelivery(models.Model):
    """One attempt to tell the door's controller about a decision."""

    event = models.ForeignKey(AccessEvent, on_delete=models.CASCADE, related_name="webhook_deliveries")
    attempt = models.PositiveSmallIntegerField()
    url = models.URLField(max_length=500)
    delivered = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["event_id", "attempt"]

    def __str__(self) -> str:
        return f"event {self.event_id} attempt {self.attempt}: {'ok' if self.delivered else self.error}"


def faces_without_vectors() -> models.Prefetch:
    """An event's faces for lists and answers: everything but the 128-d embedding, which they never show."""
    return models.Prefetch("faces", queryset=AccessEventFace.objects.defer("embedding"))


class ImpostorExample(StoredEmbedding):
    """A face a reviewer said is *not* ``person``: a later probe nearer these than the person's own photos
    is not let in as them."""

    person = models.ForeignKey("enrollment.Person", on_delete=models.CASCADE, related_name="impostor_examples")
    event_face = models.ForeignKey(AccessEventFace, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")

    def __str__(self) -> str:
        return f"not {self.person_id} ({self.model_name})"


class EventReview(models.Model):
    """A person looked at an event and said what it was."""

    class Verdict(models.TextChoices):
        CONFIRMED = "confirmed", "the decision was right"
        IS_PERSON = "is_person", "this is somebody"
        NOT_PERSON = "not_person", "this is not the matched person"

    event = models.ForeignKey(AccessEvent, on_delete=models.CASCADE, related_name="reviews")
    face_index = models.PositiveSmallIntegerField(null=True, blank=True)
    verdict = models.CharField(max_length=12, choices=Verdict.choices)
    person = models.ForeignKey("enrollment.Person", on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+")
    added_to_enrollment = models.BooleanField(default=False)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="+")
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"event {self.event_id}: {self.verdict}"


class MqttDelivery(models.Model):
    """One attempt to publish a decision to the MQTT broker (access/outputs/mqtt.py), shown with the event."""

    event = models.ForeignKey(AccessEvent, on_delete=models.CASCADE, related_name="mqtt_deliveries")
    attempt = models.PositiveSmallIntegerField()
    delivered = models.BooleanField(default=False)
    messages = models.PositiveSmallIntegerField(default=0, help_text="Messages the broker acknowledged.")
    error = models.CharField(max_length=200, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["event_id", "attempt"]

    def __str__(self) -> str:
        return f"event {self.event_id} MQTT attempt {self.attempt}: {'ok' if self.delivered else self.error}"


class StreamStatus(models.Model):
    """What the camera bridge last said of a camera's stream (its own row: reports are frequent and are not
    changes anybody made, so they stay out of the camera's audit trail)."""

    camera = models.OneToOneField(Camera, on_delete=models.CASCADE, related_name="stream_status")
    connected = models.BooleanField(default=False)
    fps = models.FloatField(default=0.0, help_text="Frames read per second.")
    last_error = models.CharField(max_length=200, blank=True)
    last_frame_at = models.DateTimeField(null=True, blank=True)
    reconnects = models.PositiveIntegerField(default=0)
    posted = models.PositiveIntegerField(default=0, help_text="Snapshots posted since the bridge started.")
    reported_at = models.DateTimeField(null=True, blank=True)

    STALE_AFTER = dt.timedelta(seconds=30)  # the bridge reports every few seconds: silence this long is news

    def __str__(self) -> str:
        return f"camera {self.camera_id}: {'connected' if self.connected else 'down'}"

    @property
    def stale(self) -> bool:
        """The bridge has not reported for a while (stopped, or cannot reach the web service)."""
        from django.utils import timezone

        return self.reported_at is None or timezone.now() - self.reported_at > self.STALE_AFTER


# The access rules' tables (groups, levels, holidays, credentials) live in access.rules.models; imported here so
# that Django registers them with this app.
from .rules.models import AccessLevel, Card, Holiday, PersonGroup, PersonPin  # noqa: E402, F401
