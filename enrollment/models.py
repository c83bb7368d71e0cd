"""People, their face photos, and the embeddings the engine made of them."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import PurePath

from django.db import models
from django.utils import timezone

from faceaccess.validity import ordered_validity
from recognition.models import DetectedFace, StoredEmbedding


class Person(models.Model):
    name = models.CharField(max_length=200)
    external_id = models.CharField(max_length=100, blank=True, help_text="Employee or badge id.")
    active = models.BooleanField(default=True)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=~models.Q(external_id=""), name="person_external_id_unique"
            ),
            ordered_validity("person_validity_ordered"),
        ]

    def __str__(self) -> str:
        return self.name

    def is_valid_at(self, when: dt.datetime | None = None) -> bool:
        when = when or timezone.now()
        return (self.valid_from is None or self.valid_from <= when) and (
            self.valid_until is None or when <= self.valid_until
        )


def face_upload_to(instance: FaceImage, filename: str) -> str:
    ext = PurePath(filename).suffix.lower() or ".jpg"
    return f"faces/{instance.person_id}/{uuid.uuid4().hex}{ext}"


def crop_upload_to(instance: FaceImage, filename: str) -> str:
    return f"crops/{instance.person_id}/{uuid.uuid4().hex}.png"


class FaceImage(DetectedFace):
    """An enrollment photo; once processed, the face enrolled from it (the DetectedFace fields), every face
    found (``candidates``) and its embeddings.

    A photo with several usable faces enrolls the dominant one (:mod:`enrollment.dominant`); when none
    dominates it stays ``several_faces`` until a person chooses one (``POST /api/v1/faces/<id>/choose/``).
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        ENROLLED = "enrolled"
        NO_FACE = "no_face"
        SEVERAL_FACES = "several_faces"
        FAILED = "failed"

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="face_images")
    image = models.FileField(upload_to=face_upload_to, max_length=255)
    # Aligned face crop the engine produced: personal data, deleted with the image.
    crop = models.FileField(upload_to=crop_upload_to, max_length=255, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    reason = models.TextField(blank=True, help_text="Why the image is not enrolled, in words.")
    faces_found = models.PositiveIntegerField(null=True, blank=True)
    # Every face the current model's worker run found, in the detector's order (the index a person picks
    # by): box, landmarks, score, size_px, usable (at or over the enrollment minimums), the model name and
    # version and, when the photo has several usable faces, each usable one's 128-d embedding, so that
    # choosing a face needs no engine (otherwise null: no bystander's embedding is kept for nothing).
    candidates = models.JSONField(default=list, blank=True)
    chosen_face = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Index in candidates of the enrolled face."
    )
    choice_reason = models.CharField(
        max_length=200, blank=True, help_text="Why that face: the dominant-face rule's words, or who chose it."
    )
    chosen_by = models.CharField(
        max_length=150, blank=True, help_text="The user who chose the face (empty: chosen by the worker)."
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["person_id", "id"]

    def __str__(self) -> str:
        return f"{self.person_id}:{self.image.name} ({self.status})"


class FaceEmbedding(StoredEmbedding):
    """One face image seen by one model; only embeddings of the same model are ever compared."""

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="embeddings")
    face_image = models.ForeignKey(FaceImage, on_delete=models.CASCADE, related_name="embeddings")

    class Meta(StoredEmbedding.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["face_image", "model_name", "model_version"], name="embedding_one_per_image_model"
            )
        ]

    def __str__(self) -> str:
        return f"{self.person_id}/{self.face_image_id} {self.model_name}-{self.model_version}"
