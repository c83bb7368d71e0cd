"""Stored files follow their rows: deleting a face image (directly or through its person) removes them."""

from __future__ import annotations

from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import FaceImage


def delete_file_on_commit(field_file: FieldFile | None) -> None:
    """Remove a stored file once the deleting transaction commits (a rollback keeps it)."""
    if not field_file or not field_file.name:
        return
    storage, name = field_file.storage, field_file.name
    transaction.on_commit(lambda: storage.delete(name))


@receiver(post_delete, sender=FaceImage, dispatch_uid="enrollment.faceimage.files")
def _face_image_deleted(sender: type[FaceImage], instance: FaceImage, **kwargs: object) -> None:
    delete_file_on_commit(instance.image)
    delete_file_on_commit(instance.crop)
