"""Celery tasks of enrollment: thin wrappers over :mod:`enrollment.embedding` (routed to the engine
workers' ``gpu`` queue by CELERY_TASK_ROUTES)."""

from __future__ import annotations

from celery import shared_task

from faceaccess.jobs import TASK_OPTIONS, RowTask

from . import embedding


class FaceImageTask(RowTask):
    model_path = "enrollment.FaceImage"
    label = "image"


@shared_task(base=FaceImageTask, **TASK_OPTIONS)
def embed_face_image(face_image_id: int, embedder: str | None = None) -> str:
    return embedding.embed_face_image(face_image_id, embedder)


# A whole gallery: far longer than one snapshot; each image is guarded inside.
@shared_task(**TASK_OPTIONS, soft_time_limit=23 * 3600, time_limit=24 * 3600)
def reembed_all(model: str | None = None) -> dict[str, int]:
    """Embed every face image with ``model`` (default: the current one); returns counts per outcome."""
    return embedding.reembed_all(model)
