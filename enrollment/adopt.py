"""Enroll a face that was already detected and embedded elsewhere (a door snapshot a reviewer vouched for,
a stranger enrolled from the strangers page): no engine needed, the embedding travels with it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from faceaccess.files import save_with_row

from .models import FaceEmbedding, FaceImage, Person, face_upload_to


def enroll_known_face(
    person: Person, image: bytes, extension: str, size: tuple[int, int], face: dict[str, Any],
    embedding: Any, model_name: str, model_version: str, original_name: str = "",
) -> FaceImage:
    """Store ``image`` as an enrolled photo of ``person`` with this face (DetectedFace fields) and embedding."""
    row = FaceImage(
        person=person, original_name=original_name[:255], width=size[0], height=size[1], faces_found=1,
        status=FaceImage.Status.ENROLLED, processed_at=timezone.now(), **face,
    )

    def save_row(name: str) -> FaceImage:
        row.image.name = name
        row.save()
        FaceEmbedding.objects.create(person=person, face_image=row, embedding=[float(x) for x in embedding],
                                     model_name=model_name, model_version=model_version)
        return row

    with transaction.atomic():
        return save_with_row(FaceImage._meta.get_field("image").storage, face_upload_to(row, f"face.{extension}"),
                             image, save_row)
