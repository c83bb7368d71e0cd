"""JSON shapes of the API: people, face images, sites, cameras and access events."""

from __future__ import annotations

from rest_framework import serializers

from enrollment.models import Person
from recognition.models import AccessEvent, AccessEventFace, Camera, Site, default_match_threshold


class SiteSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="recognition-api:site-detail")
    match_threshold = serializers.FloatField(
        required=False,
        min_value=0.0,
        max_value=2.0,
        help_text="Euclidean distance at or under which a face is accepted; defaults to the embedder's own.",
    )

    class Meta:
        model = Site
        fields = [
            "id", "url", "name", "timezone", "match_threshold", "min_face_px", "min_detection_score",
            "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def create(self, validated_data: dict) -> Site:
        if validated_data.get("match_threshold") is None:
            try:
                validated_data["match_threshold"] = default_match_threshold()
            except Exception as exc:  # no measured threshold for this embedder yet: ask for one
                raise serializers.ValidationError({"match_threshold": f"give a threshold ({exc})"}) from None
        return super().create(validated_data)

    def validate_match_threshold(self, value: float) -> float:
        if value <= 0:
            raise serializers.ValidationError("must be greater than 0")
        return value

    def validate_min_detection_score(self, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise serializers.ValidationError("must be between 0 and 1")
        return value


class CameraSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="recognition-api:camera-detail")
    allowed_people = serializers.PrimaryKeyRelatedField(
        many=True,
        queryset=Person.objects.all(),
        required=False,
        help_text="Empty: every active person of the site may pass; otherwise only these people.",
    )

    class Meta:
        model = Camera
        fields = ["id", "url", "site", "name", "active", "key_prefix", "allowed_people", "last_seen_at", "created_at"]
        read_only_fields = ["key_prefix", "last_seen_at", "created_at"]


class CameraCreatedSerializer(CameraSerializer):
    api_key = serializers.CharField(read_only=True, help_text="Shown once: store it in the camera now.")

    class Meta(CameraSerializer.Meta):
        fields = [*CameraSerializer.Meta.fields, "api_key"]


class AccessEventFaceSerializer(serializers.ModelSerializer):
    class Meta:
        model = AccessEventFace
        fields = [
            "index", "decision", "reason", "box", "landmarks", "score", "size_px", "sharpness", "yaw", "roll",
            "nearest_person", "distance", "runner_up_person", "runner_up_distance",
        ]
        read_only_fields = fields


class AccessEventSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="recognition-api:accessevent-detail")
    person_name = serializers.CharField(source="person.name", read_only=True, default=None)
    faces = AccessEventFaceSerializer(many=True, read_only=True)

    class Meta:
        model = AccessEvent
        fields = [
            "id", "url", "status", "decision", "reason", "person", "person_name", "camera", "site",
            "received_at", "captured_at", "processed_at", "latency_ms", "threshold", "min_face_px",
            "min_detection_score", "model_name", "model_version", "image_width", "image_height",
            "idempotency_key", "faces",
        ]
        read_only_fields = fields


class EventAcceptedSerializer(serializers.Serializer):
    """The 202 answer: the event exists and will be decided shortly."""

    id = serializers.IntegerField()
    url = serializers.URLField()
    status = serializers.CharField()
