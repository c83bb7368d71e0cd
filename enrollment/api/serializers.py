"""JSON shapes of people and their face images (URL names are those of the v1 API, namespace ``api``)."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.reverse import reverse

from enrollment.models import FaceImage, Person
from faceaccess.api.serializers import OrderedValidityMixin


class PersonSerializer(OrderedValidityMixin, serializers.ModelSerializer):
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


class CandidateFaceSerializer(serializers.Serializer):
    """One face the worker found in the photo (its embedding stays in the database)."""

    index = serializers.IntegerField(help_text="What to send to choose/ to enroll this face.")
    box = serializers.ListField(child=serializers.FloatField(), help_text="[x1, y1, x2, y2] in pixels.")
    landmarks = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    score = serializers.FloatField(help_text="Detection confidence, 0..1.")
    size_px = serializers.FloatField(help_text="Shorter side of the face box, pixels.")
    usable = serializers.BooleanField(help_text="At or over the enrollment minimums (size and score).")
    unusable_reason = serializers.CharField()


class FaceImageSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:faceimage-detail")
    detection_score = serializers.FloatField(source="score", read_only=True)
    face_size_px = serializers.FloatField(source="size_px", read_only=True)
    faces = CandidateFaceSerializer(source="candidates", many=True, read_only=True,
                                    help_text="Every face found, in the detector's order.")
    choose_url = serializers.SerializerMethodField(
        help_text="Where to POST {\"face\": <index>} to enroll another face (only for photos with several usable "
                  "faces; null otherwise)."
    )

    class Meta:
        model = FaceImage
        fields = [
            "id", "url", "person", "status", "reason", "original_name", "width", "height", "faces_found",
            "detection_score", "box", "landmarks", "face_size_px", "sharpness", "yaw", "roll", "liveness",
            "faces", "chosen_face", "choice_reason", "choose_url", "uploaded_at", "processed_at",
        ]
        read_only_fields = fields

    def get_choose_url(self, obj: FaceImage) -> str | None:
        if sum(1 for c in obj.candidates or [] if c.get("usable")) < 2:
            return None
        return reverse("api:faceimage-choose", args=[obj.pk], request=self.context.get("request"))


class ChooseFaceSerializer(serializers.Serializer):
    face = serializers.IntegerField(help_text="The index of a usable face in the photo's faces.")
