"""Sites, cameras and what they saw: access events with one row per face."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
import zoneinfo

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.signals import post_delete
from django.dispatch import receiver

KEY_PREFIX_LEN = 8
MAX_THRESHOLD = 2.0  # the largest Euclidean distance between two unit vectors


def default_match_threshold() -> float:
    """The default embedder's identification threshold, read when a site is created (not at import)."""
    from recognition.engine.registry import default_embedder_name, get_spec

    threshold = get_spec(default_embedder_name()).default_threshold
    if threshold is None:
        raise ValueError(f"embedder {default_embedder_name()!r} has no default identification threshold")
    return float(threshold)


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {value!r}") from None


def validate_threshold(value: float) -> None:
    if not 0.0 < value <= MAX_THRESHOLD:
        raise ValidationError(f"threshold must be in (0, {MAX_THRESHOLD}] (Euclidean distance of unit vectors)")


class Site(models.Model):
    name = models.CharField(max_length=200, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    match_threshold = models.FloatField(
        blank=True,
        validators=[validate_threshold],
        help_text="Euclidean distance at or under which a face is accepted as a person.",
    )
    min_face_px = models.PositiveIntegerField(default=40, help_text="Smaller faces (shorter box side) are ignored.")
    min_detection_score = models.FloatField(default=0.9, help_text="Less confident detections are ignored.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: object, **kwargs: object) -> None:
        if self.match_threshold is None:
            self.match_threshold = default_match_threshold()
        super().save(*args, **kwargs)


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

    class Meta:
        ordering = ["site_id", "name"]
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="camera_name_unique_per_site")]

    def __str__(self) -> str:
        return f"{self.site} / {self.name}"

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
        camera = cls.objects.select_related("site").filter(key_prefix=prefix).first() if prefix else None
        return camera if camera is not None and camera.check_key(key) else None


def snapshot_upload_to(instance: AccessEvent, filename: str) -> str:
    day = (instance.received_at or dt.datetime.now(dt.UTC)).strftime("%Y/%m/%d")
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "jpg"
    return f"snapshots/{day}/{uuid.uuid4().hex}.{ext}"


class Decision(models.TextChoices):
    GRANTED = "granted"
    DENIED = "denied"
    UNKNOWN = "unknown"
    NO_FACE = "no_face"


class AccessEvent(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    Decision = Decision

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
    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True, db_index=True)
    person = models.ForeignKey(
        "enrollment.Person", on_delete=models.SET_NULL, null=True, blank=True, related_name="access_events"
    )
    latency_ms = models.FloatField(null=True, blank=True, help_text="Received to processed.")
    threshold = models.FloatField(null=True, blank=True, help_text="The site threshold in force.")
    min_face_px = models.PositiveIntegerField(null=True, blank=True)
    min_detection_score = models.FloatField(null=True, blank=True)
    model_name = models.CharField(max_length=100, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    image_width = models.PositiveIntegerField(null=True, blank=True)
    image_height = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["camera", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="event_idempotency_unique_per_camera",
            )
        ]
        indexes = [models.Index(fields=["site", "-received_at"], name="event_site_received_idx")]

    def __str__(self) -> str:
        return f"event {self.pk} {self.status} {self.decision or '-'}"


class AccessEventFace(models.Model):
    class FaceDecision(models.TextChoices):
        GRANTED = "granted"
        DENIED = "denied"
        UNKNOWN = "unknown"
        IGNORED = "ignored"  # under the site's size or score minimum

    event = models.ForeignKey(AccessEvent, on_delete=models.CASCADE, related_name="faces")
    index = models.PositiveSmallIntegerField()
    box = models.JSONField()
    landmarks = models.JSONField()
    score = models.FloatField()
    size_px = models.FloatField(null=True, blank=True)
    sharpness = models.FloatField(null=True, blank=True)
    yaw = models.FloatField(null=True, blank=True)
    roll = models.FloatField(null=True, blank=True)
    nearest_person = models.ForeignKey(
        "enrollment.Person", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    distance = models.FloatField(null=True, blank=True)
    runner_up_person = models.ForeignKey(
        "enrollment.Person", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    runner_up_distance = models.FloatField(null=True, blank=True)
    decision = models.CharField(max_length=10, choices=FaceDecision.choices)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["event_id", "index"]
        constraints = [models.UniqueConstraint(fields=["event", "index"], name="event_face_index_unique")]

    def __str__(self) -> str:
        return f"event {self.event_id} face {self.index}: {self.decision}"


@receiver(post_delete, sender=AccessEvent, dispatch_uid="recognition.accessevent.snapshot")
def _event_deleted(sender: type[AccessEvent], instance: AccessEvent, **kwargs: object) -> None:
    from enrollment.signals import delete_file_on_commit

    delete_file_on_commit(instance.snapshot)
