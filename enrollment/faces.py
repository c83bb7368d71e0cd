"""Storing a new face image (web and command side) and handing it to the worker."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.db import transaction

from recognition.api.uploads import ImageUpload

from .models import FaceImage, Person, face_upload_to


def enqueue_face(face_image_id: int) -> None:
    from recognition.tasks import embed_face_image

    embed_face_image.enqueue(face_image_id)


def create_face_image(person: Person, upload: ImageUpload, queue: bool = True) -> FaceImage:
    """Store the file and the row together (no row: no file) and queue the embedding once the row commits."""
    face = FaceImage(person=person, original_name=upload.filename[:255], width=upload.width, height=upload.height)
    storage = FaceImage._meta.get_field("image").storage
    name = storage.save(face_upload_to(face, f"face.{upload.extension}"), ContentFile(upload.data))
    try:
        with transaction.atomic():
            face.image.name = name
            face.save()
            if queue:
                transaction.on_commit(lambda: enqueue_face(face.pk))
    except BaseException:
        storage.delete(name)
        raise
    return face
