"""Face intake (web and command side): store a new photo with its row and hand it to the worker."""

from __future__ import annotations

from django.db import transaction

from faceaccess.files import save_with_row
from faceaccess.uploads import ImageUpload

from .models import FaceImage, Person, face_upload_to


def enqueue_face(face_image_id: int) -> None:
    from .tasks import embed_face_image

    embed_face_image.enqueue(face_image_id)


def create_face_image(person: Person, upload: ImageUpload, queue: bool = True) -> FaceImage:
    """Store the file and the row together (no row: no file) and queue the embedding once the row commits."""
    face = FaceImage(person=person, original_name=upload.filename[:255], width=upload.width, height=upload.height)
    storage = FaceImage._meta.get_field("image").storage

    def save_row(name: str) -> FaceImage:
        face.image.name = name
        face.save()
        if queue:
            transaction.on_commit(lambda: enqueue_face(face.pk))
        return face

    return save_with_row(storage, face_upload_to(face, f"face.{upload.extension}"), upload.data, save_row)
