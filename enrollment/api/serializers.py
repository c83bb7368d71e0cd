"""JSON shapes of people and their face images (URL names are those of the v1 API, namespace ``api``)."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.reverse import reverse

from enrollment.models import FaceImage, Person


class PersonSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:person-detail")
    faces_url = serializers.SerializerMethodField()
    face_count = serializers.IntegerField(read_only=True, required=False)
    enrolled_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Person
        fields = [
            "id", "url", "name", "external_id", "active", "valid_from", "valid_until", "notes",
            "face_count", "enrolled_count", "faces_url", "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_faces_url(self, obj: Person) -> str:
        return reverse("api:person-faces", args=[obj.pk], request=self.context.get("request"))

    def validate(self, attrs: dict) -> dict:
        start = attrs.get("valid_from", getattr(self.instance, "valid_from", None))
        end = attrs.get("valid_until", getattr(self.instance, "valid_until", None))
        if start and end and start > end:
            raise serializers.ValidationError({"valid_until": "must not be before valid_from"})
        return attrs


class FaceImageSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:faceimage-detail")
    detection_score = serializers.FloatField(source="score", read_only=True)
    face_size_px = serializers.FloatField(source="size_px", read_only=True)

    class Meta:
        model = FaceImage
        fields = [
            "id", "url", "person", "status", "reason", "original_name", "width", "height", "faces_found",
            "detection_score", "box", "landmarks", "face_size_px", "sharpness", "yaw", "roll",
            "uploaded_at", "processed_at",
        ]
        read_only_fields = fields
