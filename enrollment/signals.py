"""Stored files follow their rows: deleting a face image (directly or through its person) removes them."""

from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import receiver

from faceaccess.files import delete_file_on_commit

from .models import FaceImage


@receiver(post_delete, sender=FaceImage, dispatch_uid="enrollment.faceimage.files")
def _face_image_deleted(sender: type[FaceImage], instance: FaceImage, **kwargs: object) -> None:
    delete_file_on_commit(instance.image)
    delete_file_on_commit(instance.crop)
