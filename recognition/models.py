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

    # The fields above, i.e. what fields_of() fills and face_fields() copies.
    FIELDS = ("box", "landmarks", "score", "size_px", "sharpness", "yaw", "roll")

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
