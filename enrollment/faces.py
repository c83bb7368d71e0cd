"""Storing a new face image (web and command side) and handing it to the worker."""

from __future__ import annotations

import logging

from django.core.files.base import ContentFile
from django.db import transaction

from recognition.api.uploads import ImageUpload

from .models import FaceImage, Person, face_upload_to

log = logging.getLogger(__name__)


def enqueue_face(face_image_id: int) -> None:
    """Queue the embedding; a broker failure marks the image failed instead of leaving it pending forever."""
    from recognition.tasks import embed_face_image

    try:
        embed_face_image.delay(face_image_id)
    except Exception as exc:
        log.exception("could not queue face image %s", face_image_id)
        FaceImage.objects.filter(pk=face_image_id).update(
            status=FaceImage.Status.FAILED, reason=f"could not queue the image: {exc}"
        )


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
