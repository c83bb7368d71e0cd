"""Turn an uploaded face image into exactly one embedding (worker side).

A photo with one usable face (at or over the enrollment minimums) becomes one
FaceEmbedding of the model that made it; zero or several usable faces end in
``no_face`` / ``several_faces`` with a reason a person can act on.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from PIL import Image

from faceaccess.files import delete_file_on_commit
from faceaccess.jobs import mark_failed
from recognition.pipelines import FacePipeline, current_embedder_name, get_pipeline, read_image

from .models import FaceEmbedding, FaceImage, crop_upload_to

log = logging.getLogger(__name__)
Status = FaceImage.Status


def enroll_minimums() -> tuple[float, float]:
    return settings.FACEACCESS_ENROLL_MIN_FACE_PX, settings.FACEACCESS_ENROLL_MIN_SCORE


def _unusable_reason(face: Any, min_px: float, min_score: float) -> str | None:
    if face.quality.size_px < min_px:
        return f"a face of {face.quality.size_px:.0f} px (minimum {min_px:g} px)"
    if face.score < min_score:
        return f"a face with detection score {face.score:.2f} (minimum {min_score:.2f})"
    return None


def _png(crop: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="PNG")
    return buf.getvalue()


def embed_face_image(face_image_id: int, embedder: str | None = None) -> str:
    """Embed one face image with ``embedder`` (default: the current model) and return its status.

    Status and face figures follow the current model only; another model (a re-embed ahead of a switch)
    just adds its embedding.
    """
    face_image = FaceImage.objects.filter(pk=face_image_id).first()
    if face_image is None:
        return "gone"  # deleted before the worker got to it
    is_current = embedder is None or embedder == current_embedder_name()
    try:
        from recognition.engine import ImageError

        pipeline = get_pipeline(embedder)
        if is_current:
            FaceImage.objects.filter(pk=face_image_id).update(status=Status.PROCESSING)
        try:
            image = read_image(face_image.image)
        except ImageError as exc:
            return _finish(face_image, is_current, Status.FAILED, f"bad image: {exc}")
        faces = pipeline.faces([image], embed=True, return_crops=True)[0]
        min_px, min_score = enroll_minimums()
        usable = [f for f in faces if _unusable_reason(f, min_px, min_score) is None]
        fields = {"width": int(image.shape[1]), "height": int(image.shape[0]), "faces_found": len(faces)}
        if not faces:
            return _finish(face_image, is_current, Status.NO_FACE, "no face found in the photo", **fields)
        if not usable:
            why = "; ".join(_unusable_reason(f, min_px, min_score) for f in faces)
            return _finish(face_image, is_current, Status.NO_FACE, f"no usable face: {why}", **fields)
        if len(usable) > 1:
            reason = f"{len(usable)} usable faces found; upload a photo showing only this person"
            return _finish(face_image, is_current, Status.SEVERAL_FACES, reason, **fields)
        return _enroll(face_image, usable[0], pipeline, is_current, fields)
    except Exception as exc:
        log.exception("face image %s failed", face_image_id)
        if is_current:  # a failed re-embed with another model leaves the image's status alone
            mark_failed(FaceImage, face_image_id, f"{type(exc).__name__}: {exc}", processed_at=timezone.now())
        raise


def _finish(face_image: FaceImage, is_current: bool, status: str, reason: str, **fields: Any) -> str:
    if is_current:
        with transaction.atomic():
            FaceImage.objects.filter(pk=face_image.pk).update(
                status=status, reason=reason, processed_at=timezone.now(), **fields
            )
            # A photo that no longer yields one face must not keep matching with an old embedding.
            FaceEmbedding.objects.filter(
                face_image_id=face_image.pk, model_name=current_embedder_name()
            ).delete()
    return status


def _enroll(face_image: FaceImage, face: Any, pipeline: FacePipeline, is_current: bool, fields: dict) -> str:
    storage = FaceImage._meta.get_field("crop").storage
    crop_name = ""
    if is_current and face.crop is not None:
        # Written before the transaction; removed again below if the row does not commit.
        crop_name = storage.save(crop_upload_to(face_image, "crop.png"), ContentFile(_png(face.crop)))
    try:
        with transaction.atomic():
            locked = FaceImage.objects.select_for_update().filter(pk=face_image.pk).first()
            if locked is None:
                raise _Gone
            FaceEmbedding.objects.update_or_create(
                face_image=locked,
                model_name=pipeline.embedder_name,
                model_version=pipeline.embedder_version,
                defaults={"person_id": locked.person_id, "embedding": face.embedding.tolist()},
            )
            if not is_current:
                return "embedded"
            if crop_name:
                delete_file_on_commit(locked.crop)  # the previous crop, if any
                locked.crop.name = crop_name
            for key, value in fields.items():
                setattr(locked, key, value)
            locked.status = Status.ENROLLED
            locked.reason = ""
            locked.set_face(face)
            locked.processed_at = timezone.now()
            locked.save()
        return Status.ENROLLED
    except _Gone:
        return "gone"
    finally:
        if crop_name and not FaceImage.objects.filter(pk=face_image.pk, crop=crop_name).exists():
            storage.delete(crop_name)


class _Gone(Exception):
    """The face image was deleted while the worker was embedding it."""


def reembed_all(embedder: str | None = None, progress: Any = None) -> dict[str, int]:
    """Embed every face image with ``embedder`` (default: the current model); counts per outcome.

    One bad image never stops the run: it ends ``failed`` with its reason and the loop goes on.
    """
    counts: dict[str, int] = {}
    for pk in list(FaceImage.objects.order_by("pk").values_list("pk", flat=True)):
        try:
            outcome = embed_face_image(pk, embedder)
        except Exception:
            outcome = Status.FAILED
        counts[outcome] = counts.get(outcome, 0) + 1
        if progress is not None:
            progress(pk, outcome)
    return counts
