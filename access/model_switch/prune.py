"""Deleting the embeddings of models other than the active one (photos and impostor examples), once no switch is
under way: switching back then re-embeds everything."""

from __future__ import annotations

from enrollment.models import FaceEmbedding
from recognition.active import state_row
from recognition.pipelines import current_embedder_name

from ..models import ImpostorExample
from .state import SwitchError


def prune_other_models() -> int:
    """Delete every embedding (photos and impostor examples) of a model other than the active one."""
    row = state_row()
    if row.in_progress:
        raise SwitchError("switch_in_progress", "a switch is under way: prune after it", 409)
    active = current_embedder_name()
    deleted = FaceEmbedding.objects.exclude(model_name=active).delete()[0]
    return deleted + ImpostorExample.objects.exclude(model_name=active).delete()[0]
