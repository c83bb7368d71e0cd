"""JSON shapes of sites, cameras, people with their sites, and access events."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from access import liveness, naming
from access.bridge import sources
from access.models import AccessEvent, AccessEventFace, Camera, MqttDelivery, Site, StreamStatus, WebhookDelivery
from access.thresholds import set_threshold
from enrollment.api.serializers import PersonSerializer
from enrollment.models import Person
from faceaccess.api.serializers import BuiltOnceModelSerializer


class SiteSerializer(serializers.ModelSerializer):
    """The threshold's default and range come from the model (``Site.fill_defaults``, ``validate_threshold``)."""

    url = serializers.HyperlinkedIdentityField(view_name="api:site-detail")
    liveness_status = serializers.SerializerMethodField(
        help_text='"installed", or why liveness cannot be enforced on this server and how to install it.')
    reason = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=500,
        help_text="Required when a change loosens the door (a larger match_threshold, or liveness_policy no longer "
                  "enforce): why, kept with the change in the audit trail.")

    class Meta:
        model = Site
        fields = [
            "id", "url", "name", "timezone", "match_threshold", "threshold_model", "other_thresholds",
            "threshold_note", "min_face_px", "min_detection_score",
            "liveness_policy", "liveness_threshold", "liveness_status", "verification",
            "detection_policy", "decision_deadline_seconds", "max_snapshot_pixels", "retain_unknown_days",
            "retain_known_days",
            "created_at", "updated_at", "reason",
        ]
        # The threshold's model is the active one's when it is set; a model switch remaps it (access.thresholds).
        read_only_fields = ["threshold_model", "other_thresholds", "threshold_note", "created_at", "updated_at"]

    def get_liveness_status(self, site: Site) -> str:
        return liveness.status()

    def validate_liveness_policy(self, value: str) -> str:
        try:
            liveness.check_policy(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["liveness_policy"]) from None
        return value

    def validate(self, attrs: dict) -> dict:
        site = self.instance
        if site is not None and not attrs.get("reason", "").strip():
            looser = attrs.get("match_threshold") is not None and attrs["match_threshold"] > site.match_threshold + 1e-9
            looser |= site.liveness_policy == "enforce" and attrs.get("liveness_policy", "enforce") != "enforce"
            if looser:
                raise serializers.ValidationError({"reason": "this change loosens the door (more faces let in, or "
                                                             "liveness no longer enforced): say why in 'reason'"})
        return attrs

    def update(self, instance: Site, validated_data: dict) -> Site:
        reason = validated_data.pop("reason", "").strip()
        if reason:
            details = {"what": "site loosened", "reason": reason}
            instance.get_additional_data = lambda: details  # kept with the audit entry of this update
        if "match_threshold" in validated_data:  # a number set now is the active model's, and re-tuned
            set_threshold(instance, validated_data.pop("match_threshold"), save=False)
        return super().update(instance, validated_data)

    def create(self, validated_data: dict) -> Site:
        validated_data.pop("reason", None)
        site = Site(**validated_data)
        try:
            site.fill_defaults()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        site.save()
        return site


class PersonWithSitesSerializer(PersonSerializer):
    """A person plus the sites they may enter (access grants without a validity window of their own)."""

    sites = serializers.PrimaryKeyRelatedField(many=True, queryset=Site.objects.all(), required=False)

    class Meta(PersonSerializer.Meta):
        fields = [*PersonSerializer.Meta.fields[:8], "sites", *PersonSerializer.Meta.fields[8:]]


class CameraSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:camera-detail")
    allowed_people = serializers.PrimaryKeyRelatedField(
        many=True,
        queryset=Person.objects.all(),
        required=False,
        help_text="Empty: every active person of the site may pass; otherwise only these people.",
    )

    # The camera bridge's source (README "Connect a camera"): a URL given with credentials is stored without them;
    # the credentials are write-only and never shown again (only the bridge, with its token, reads them).
    stream_url = serializers.CharField(max_length=500, allow_blank=True, required=False,
                                       help_text="rtsp://, http(s):// (snapshot or MJPEG) or /dev/videoN; "
                                       "user:password@ in it is stored apart and never shown.")
    stream_username = serializers.CharField(max_length=200, allow_blank=True, required=False, write_only=True)
    stream_password = serializers.CharField(max_length=200, allow_blank=True, required=False, write_only=True,
                                            style={"input_type": "password"})
    stream_has_credentials = serializers.SerializerMethodField()
    stream_status = serializers.SerializerMethodField(help_text="What the camera bridge last reported (null: "
                                                      "no report yet).")

    class Meta:
        model = Camera
        fields = ["id", "url", "site", "name", "active", "key_prefix", "allowed_people", "webhook_url",
                  "debounce_seconds", "verification", "last_seen_at", "created_at",
                  "stream_url", "stream_kind", "stream_username", "stream_password", "stream_has_credentials",
                  "stream_fps", "motion_threshold", "stream_roi", "grant_cooldown_seconds", "stream_status",
                  "mqtt_unlock_topic", "mqtt_unlock_payload", "mqtt_lock_payload", "mqtt_pulse_seconds"]
        read_only_fields = ["key_prefix", "last_seen_at", "created_at"]

    def get_stream_has_credentials(self, camera: Camera) -> bool:
        return bool(camera.stream_username or camera.stream_password)

    def get_stream_status(self, camera: Camera) -> dict | None:
        try:
            status = camera.stream_status
        except StreamStatus.DoesNotExist:
            return None
        return stream_status_dict(status)

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        instance = self.instance
        if "stream_url" in attrs:
            try:
                bare, user, password = sources.split_credentials(attrs["stream_url"])
            except sources.BadSource as exc:
                raise serializers.ValidationError({"stream_url": [str(exc)]}) from None
            attrs["stream_url"] = bare
            if user or password:
                attrs.setdefault("stream_username", user)
                attrs.setdefault("stream_password", password)
            if not bare:
                attrs.update(stream_username="", stream_password="", stream_kind="")
        url = attrs.get("stream_url", instance.stream_url if instance else "")
        if url:
            kind = attrs.get("stream_kind", "" if "stream_url" in attrs or instance is None else instance.stream_kind)
            try:
                attrs["stream_kind"] = sources.check(url, kind)
            except sources.BadSource as exc:
                raise serializers.ValidationError({"stream_url": [str(exc)]}) from None
        return attrs


class CameraCreatedSerializer(CameraSerializer):
    api_key = serializers.CharField(read_only=True, help_text="Shown once: store it in the camera now.")
    webhook_secret = serializers.CharField(read_only=True, help_text="Verifies the webhook's signature.")

    class Meta(CameraSerializer.Meta):
        fields = [*CameraSerializer.Meta.fields, "api_key", "webhook_secret"]


class CameraKeySerializer(CameraSerializer):
    """A rotated key: the key alone (the webhook secret is not shown again)."""

    api_key = serializers.CharField(read_only=True, help_text="Shown once: store it in the camera now.")

    class Meta(CameraSerializer.Meta):
        fields = [*CameraSerializer.Meta.fields, "api_key"]


class CameraSecretSerializer(CameraSerializer):
    """A rotated webhook secret, shown once."""

    webhook_secret = serializers.CharField(read_only=True, help_text="Verifies the webhook's signature.")

    class Meta(CameraSerializer.Meta):
        fields = [*CameraSerializer.Meta.fields, "webhook_secret"]


def stream_status_dict(status: StreamStatus) -> dict:
    return {"connected": status.connected, "fps": status.fps, "last_error": status.last_error,
            "last_frame_at": status.last_frame_at, "reconnects": status.reconnects, "posted": status.posted,
            "reported_at": status.reported_at}


class MqttDeliverySerializer(BuiltOnceModelSerializer):
    class Meta:
        model = MqttDelivery
        fields = ["attempt", "delivered", "messages", "error", "duration_ms", "created_at"]
        read_only_fields = fields


class WebhookDeliverySerializer(BuiltOnceModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = ["attempt", "delivered", "status_code", "error", "duration_ms", "created_at"]
        read_only_fields = fields


class AccessEventFaceSerializer(BuiltOnceModelSerializer):
    class Meta:
        model = AccessEventFace
        fields = [
            "index", "decision", "reason", "box", "landmarks", "score", "size_px", "sharpness", "yaw", "roll",
            "nearest_person", "distance", "runner_up_person", "runner_up_distance", "liveness",
        ]
        read_only_fields = fields


class AccessEventSerializer(BuiltOnceModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:accessevent-detail")
    person_name = serializers.CharField(source="person.name", read_only=True, default=None)
    faces = AccessEventFaceSerializer(many=True, read_only=True)
    webhook_deliveries = WebhookDeliverySerializer(many=True, read_only=True)
    mqtt_deliveries = MqttDeliverySerializer(many=True, read_only=True)
    timings = serializers.JSONField(
        read_only=True,
        help_text="Milliseconds per stage, as the web process and the worker measured them: parse (auth, upload "
                  "checks), store (file), insert (row + commit), enqueue, queue (waiting for a worker), load, decode, "
                  "batch_wait + detect + embed (batch_size snapshots per engine call), search (pgvector), decide, save "
                  "(+ commit), notify (the decision reaching the waiting request), fetch, total (request start to "
                  "answer). Null for events decided before timings were recorded.",
    )

    class Meta:
        model = AccessEvent
        fields = [
            "id", "url", "status", "decision", "reason", "person", "person_name", "camera", "site",
            "received_at", "captured_at", "processed_at", "latency_ms", "threshold", "min_face_px",
            "min_detection_score", "liveness_policy", "liveness_threshold", "liveness", "reason_code",
            "verification", "second_factor", "model_name", "model_version", "image_width", "image_height",
            "idempotency_key", "repeat_of", "faces", "webhook_deliveries", "mqtt_deliveries", "timings",
        ]
        read_only_fields = fields

    def to_representation(self, instance: AccessEvent) -> dict:
        """Reasons are stored with person tokens; names are filled in now (an erased person stays unnamed)."""
        data = super().to_representation(instance)
        texts = [data["reason"], *(f["reason"] for f in data["faces"])]
        known = {instance.person_id: instance.person.name} if instance.person_id is not None else {}
        names = naming.names_for(texts, known)
        data["reason"] = naming.render(data["reason"], names)
        for face in data["faces"]:
            face["reason"] = naming.render(face["reason"], names)
        return data


class EventAcceptedSerializer(serializers.Serializer):
    """The 202 answer: the event exists and will be decided shortly."""

    id = serializers.IntegerField()
    url = serializers.URLField()
    status = serializers.CharField()
