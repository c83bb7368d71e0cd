"""Turn an uploaded face image into exactly one embedding (worker side), and let a person choose the face.

A photo with one usable face (at or over the enrollment minimums) becomes one FaceEmbedding of the
model that made it. With several usable faces the dominant one (:mod:`enrollment.dominant`) is
enrolled; when none dominates the photo ends ``several_faces``. Zero usable faces end ``no_face``.
Every face found is kept on the row (``FaceImage.candidates``, with its embedding), so that
:func:`choose_face` can enroll the face a person picks without the engine; a person's choice also
survives a later re-embedding (the face with the same box is taken again).
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

from faceaccess import audit
from faceaccess.files import delete_file_on_commit
from faceaccess.jobs import mark_failed
from recognition.pipelines import FacePipeline, current_embedder_name, get_pipeline, read_image

from .dominant import box_iou, dominant_face
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
        why_not = [_unusable_reason(f, min_px, min_score) for f in faces]
        usable = [i for i, why in enumerate(why_not) if why is None]
        # Embeddings are kept only where a person may choose (several usable faces): no bystander's otherwise.
        keep = len(usable) > 1
        candidates = [_candidate(i, f, why, pipeline, keep and why is None)
                      for i, (f, why) in enumerate(zip(faces, why_not, strict=True))]
        fields = {"width": int(image.shape[1]), "height": int(image.shape[0]), "faces_found": len(faces),
                  "candidates": candidates}
        if not faces:
            return _finish(face_image, is_current, Status.NO_FACE, "no face found in the photo", **fields)
        if not usable:
            why = "; ".join(why_not)
            return _finish(face_image, is_current, Status.NO_FACE, f"no usable face: {why}", **fields)
        index, why, chosen_by = _pick(face_image, faces, usable, fields["width"], fields["height"])
        if index is None:
            reason = (f"{len(usable)} usable faces found and none dominates ({why}); choose one with "
                      f'POST /api/v1/faces/{face_image.pk}/choose/ {{"face": <index>}} '
                      "or upload a photo showing only this person")
            return _finish(face_image, is_current, Status.SEVERAL_FACES, reason, **fields)
        fields.update(chosen_face=index, choice_reason=why, chosen_by=chosen_by)
        if is_current:
            _score_liveness(pipeline, image, faces[index], face_image.pk)
        return _enroll(face_image, faces[index], pipeline, is_current, fields)
    except Exception as exc:
        log.exception("face image %s failed", face_image_id)
        if is_current:  # a failed re-embed with another model leaves the image's status alone
            mark_failed(FaceImage, face_image_id, f"{type(exc).__name__}: {exc}", processed_at=timezone.now())
        raise


def _score_liveness(pipeline: FacePipeline, image: Any, face: Any, face_image_id: int) -> None:
    """The enrolled face's live score (kept on the photo: the console warns on a likely recapture, a photo of a
    printed photo or of a screen). A warning only, never a refusal: without the liveness models it stays unset."""
    from recognition.engine.registry import liveness_installed

    if not liveness_installed():
        return
    try:
        pipeline.score_liveness(image, [face])
    except Exception as exc:
        log.warning("face image %s: no live score (%s: %s)", face_image_id, type(exc).__name__, exc)


def _candidate(index: int, face: Any, unusable: str | None, pipeline: FacePipeline, with_embedding: bool
               ) -> dict[str, Any]:
    """One detected face as stored in ``FaceImage.candidates`` (JSON)."""
    return {
        "index": index,
        **FaceImage.fields_of(face),
        "usable": unusable is None,
        "unusable_reason": unusable or "",
        "model_name": pipeline.embedder_name,
        "model_version": pipeline.embedder_version,
        "embedding": [float(v) for v in face.embedding] if with_embedding and face.embedding is not None else None,
    }


def _pick(face_image: FaceImage, faces: list[Any], usable: list[int], width: int, height: int
          ) -> tuple[int | None, str, str]:
    """The face to enroll (None: none dominates), why, and who chose it ("" for the worker's rule).

    A face a person chose before is taken again when one usable face has nearly the same box (IoU >= 0.5:
    detection does not depend on the embedder, so a re-embed finds the same boxes)."""
    previous = face_image.candidates or []
    if face_image.chosen_by and face_image.chosen_face is not None and face_image.chosen_face < len(previous):
        box = previous[face_image.chosen_face]["box"]
        overlap = {i: box_iou(box, [float(v) for v in faces[i].box]) for i in usable}
        best = max(overlap, key=overlap.get)
        if overlap[best] >= 0.5:
            return best, face_image.choice_reason, face_image.chosen_by
    if len(usable) == 1:
        if len(faces) == 1:
            return usable[0], "the only face", ""
        return usable[0], f"the only usable face of {len(faces)}", ""
    choice = dominant_face([[float(v) for v in faces[i].box] for i in usable], width, height)
    return (None if choice.index is None else usable[choice.index]), choice.reason, ""


def _finish(face_image: FaceImage, is_current: bool, status: str, reason: str, **fields: Any) -> str:
    if is_current:
        fields = {"candidates": [], **fields, "chosen_face": None, "choice_reason": "", "chosen_by": ""}
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


class ChoiceError(Exception):
    """Why a face cannot be chosen: a stable code, words a person can act on, an HTTP status."""

    def __init__(self, code: str, detail: str, status: int = 400):
        super().__init__(detail)
        self.code, self.detail, self.status = code, detail, status


def choose_face(face_image_id: int, index: int, chosen_by: str) -> FaceImage:
    """Enroll face ``index`` of a photo with several usable faces, as ``chosen_by`` picked it.

    Needs no engine: the face's embedding was stored by the worker (``candidates``). It replaces every
    embedding of the photo (those of another model were of the face taken before and are dropped; a
    re-embed with that model takes the chosen face). The aligned crop of the face taken before is deleted;
    the chosen face gets one at the next re-embed (the worker makes crops).
    """
    with transaction.atomic():
        image = FaceImage.objects.select_for_update().filter(pk=face_image_id).first()
        if image is None:
            raise ChoiceError("not_found", "no such face image", 404)
        candidates = image.candidates or []
        usable = sum(1 for c in candidates if c.get("usable"))
        if image.status == Status.SEVERAL_FACES and not candidates:
            raise ChoiceError("faces_outdated", "this photo was processed before its faces were kept: re-embed it "
                                                "(manage.py reembed), then choose", 409)
        if image.status not in (Status.SEVERAL_FACES, Status.ENROLLED) or usable < 2:
            raise ChoiceError(
                "not_several_faces",
                f"this photo is {image.status} with {usable} usable face{'s' if usable != 1 else ''}: "
                "a face can be chosen only in a photo with several usable faces",
            )
        if not 0 <= index < len(candidates):
            raise ChoiceError("bad_face_index",
                              f"no face {index}: this photo's faces are numbered 0 to {len(candidates) - 1}")
        face = candidates[index]
        if not face.get("usable") or not face.get("embedding"):
            raise ChoiceError("face_unusable", f"face {index} cannot be enrolled: {face.get('unusable_reason')}")
        current = current_embedder_name()
        if face["model_name"] != current:
            raise ChoiceError(
                "faces_outdated",
                f"this photo's faces were embedded with {face['model_name']}, the current model is {current}: "
                "re-embed the photo, then choose",
                409,
            )
        FaceEmbedding.objects.filter(face_image=image).delete()
        FaceEmbedding.objects.create(
            person_id=image.person_id, face_image=image, embedding=face["embedding"],
            model_name=face["model_name"], model_version=face["model_version"],
        )
        for name in FaceImage.FIELDS:
            setattr(image, name, face.get(name))  # faces kept before a field existed lack it
        delete_file_on_commit(image.crop)
        image.crop.name = ""
        before = image.chosen_face
        image.status = Status.ENROLLED
        image.reason = ""
        image.chosen_face = index
        image.choice_reason = f"chosen by {chosen_by}"[:200]
        image.chosen_by = chosen_by[:150]
        image.save()
        audit.record(image, "face picked", {"chosen_face": (before, index)}, person=image.person_id)
    return image


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
