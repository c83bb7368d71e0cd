"""Abstract rows the engine's output is stored in; the apps above make them concrete.

- :class:`DetectedFace`: one face the detector found (box, landmarks, score, quality), with the one
  mapping from an engine ``Face`` to row fields that both enrollment photos and door events use.
- :class:`StoredEmbedding`: one embedding of one model (name + version), with an HNSW index for the
  pgvector search in :mod:`recognition.search`. Embeddings of different models are never compared.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from pgvector.django import HnswIndex, VectorField

EMBEDDING_DIM = 128


def _r(value: Any) -> float:
    return round(float(value), 2)


class DetectedFace(models.Model):
    box = models.JSONField(null=True, blank=True)  # [x1, y1, x2, y2] in original pixels
    landmarks = models.JSONField(null=True, blank=True)  # [[x, y] * 5]: eyes, nose, mouth corners
    score = models.FloatField(null=True, blank=True, help_text="Detection confidence, 0..1.")
    size_px = models.FloatField(null=True, blank=True, help_text="Shorter side of the face box, pixels.")
    sharpness = models.FloatField(null=True, blank=True)
    yaw = models.FloatField(null=True, blank=True)
    roll = models.FloatField(null=True, blank=True)
    # Passive liveness: the probability of a real face in front of the camera (0..1, low = a print or a screen);
    # null when it was not scored (liveness off, not installed, or not a face anybody would be let in as).
    liveness = models.FloatField(null=True, blank=True, help_text="Live score 0..1 (low: a print or a screen).")

    # The fields above, i.e. what fields_of() fills and face_fields() copies.
    FIELDS = ("box", "landmarks", "score", "size_px", "sharpness", "yaw", "roll", "liveness")

    class Meta:
        abstract = True

    def face_fields(self) -> dict[str, Any]:
        """This row's detected-face fields, to copy onto another DetectedFace row."""
        return {name: getattr(self, name) for name in self.FIELDS}

    @staticmethod
    def fields_of(face: Any) -> dict[str, Any]:
        """The row fields of an engine ``Face`` (box and landmarks rounded to 0.01 px)."""
        return {
            "box": [_r(v) for v in face.box],
            "landmarks": [[_r(x), _r(y)] for x, y in face.landmarks],
            "score": float(face.score),
            "size_px": float(face.quality.size_px),
            "sharpness": float(face.quality.sharpness),
            "yaw": float(face.quality.yaw),
            "roll": float(face.quality.roll),
            "liveness": None if getattr(face, "liveness", None) is None else float(face.liveness),
        }

    def set_face(self, face: Any) -> None:
        for name, value in self.fields_of(face).items():
            setattr(self, name, value)


class StoredEmbedding(models.Model):
    embedding = VectorField(dimensions=EMBEDDING_DIM)
    model_name = models.CharField(max_length=100)
    model_version = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        # No b-tree on the model columns on purpose: it would tempt the planner into "filter, then sort
        # every row" instead of walking the HNSW graph (the model filter is rarely selective).
        indexes = [
            HnswIndex(
                name="%(class)s_hnsw_l2",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_l2_ops"],
            ),
        ]


class EmbedderState(models.Model):
    """Which embedder decides, and the switch to another one when one is under way (a single row, pk 1).

    ``active_name`` empty means "not pinned yet": FACEACCESS_EMBEDDER (else the engine's default) decides. The
    engine worker pins it when it starts, and so does the first switch; from then on the row, not the
    environment, says which model's embeddings and thresholds are in force (see :mod:`recognition.active`).
    A switch (``access.model_switch``) re-embeds with ``target_name`` while the active model keeps deciding,
    and makes the target active only once every enrolled photo has been tried.
    """

    class State(models.TextChoices):
        IDLE = "idle"  # no switch ever started
        REEMBEDDING = "reembedding"  # the target embeds every photo; the active model decides meanwhile
        READY = "ready"  # every photo tried, some failed: waits for an admin to switch anyway or cancel
        SWITCHED = "switched"  # the target became the active model
        CANCELLED = "cancelled"  # stopped; the active model stayed
        FAILED = "failed"  # the switch itself could not go on (e.g. the target's weights); the active model stayed

    active_name = models.CharField(max_length=200, blank=True)
    active_version = models.CharField(max_length=100, blank=True)
    previous_name = models.CharField(max_length=200, blank=True)
    target_name = models.CharField(max_length=200, blank=True)
    target_version = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.IDLE)
    # Increases with every switch started: a queued chunk of an older (cancelled) switch sees it and stops.
    run = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # The photos the target could not embed: [{"image": id, "person": id, "reason": "..."}] (ids of the apps above).
    failures = models.JSONField(default=list, blank=True)
    # Other counts of the run (impostor examples re-embedded / left to the old model...).
    extra = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    started_by = models.CharField(max_length=150, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    switched_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        target = f" -> {self.target_name} ({self.state})" if self.target_name else ""
        return f"{self.active_name or '(configured)'}{target}"

    @property
    def in_progress(self) -> bool:
        return self.state in (self.State.REEMBEDDING, self.State.READY)
