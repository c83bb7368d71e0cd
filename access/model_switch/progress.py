"""The switch's progress on its row: what is left to embed and the counts the console shows. Written only while
the run is the one under way (a cancel or a newer run wins)."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef
from django.utils import timezone

from enrollment.models import FaceEmbedding, FaceImage
from recognition.active import state_row
from recognition.models import EmbedderState

State = EmbedderState.State
ENROLLED = FaceImage.Status.ENROLLED


def missing(model: str, version: str):
    """Enrolled photos without an embedding of ``model``/``version``."""
    has = FaceEmbedding.objects.filter(face_image=OuterRef("pk"), model_name=model, model_version=version)
    return FaceImage.objects.filter(status=ENROLLED).exclude(Exists(has))


def progress(run: int, failures: list | None = None, **fields: Any) -> bool:
    """Recount total / done / failed (photos added or deleted meanwhile count as they are now)."""
    row = state_row()
    version = fields.get("target_version") or row.target_version
    failures = row.failures if failures is None else failures
    enrolled = set(FaceImage.objects.filter(status=ENROLLED).values_list("pk", flat=True))
    failures = [f for f in failures if f["image"] in enrolled]  # a deleted or re-processed photo no longer fails
    total = len(enrolled)
    left = missing(row.target_name, version).count()
    return update(run, total=total, done=total - left, failed=len(failures), failures=failures, **fields)


def update(run: int, **fields: Any) -> bool:
    """Write progress only while this run is the one under way (a cancel or a newer run wins)."""
    fields["updated_at"] = timezone.now()
    return bool(EmbedderState.objects.filter(pk=1, run=run, state=State.REEMBEDDING).update(**fields))
