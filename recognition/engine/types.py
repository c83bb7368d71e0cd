"""Plain data types shared by the detector, the embedders and the pipeline.

Conventions used across the engine:
- images are ``numpy.ndarray`` of shape (H, W, 3), dtype uint8, **RGB** order;
- boxes are ``[x1, y1, x2, y2]`` in pixels of the original image;
- the five landmarks are, in order: left eye, right eye, nose tip, left mouth
  corner, right mouth corner ("left" = image left), shape (5, 2) as (x, y);
- embeddings are float32 vectors of length 128 with unit L2 norm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Detections:
    """Faces found in one image by the detector, sorted by score (high first)."""

    boxes: np.ndarray  # (N, 4) float32
    scores: np.ndarray  # (N,) float32
    landmarks: np.ndarray  # (N, 5, 2) float32

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            landmarks=np.zeros((0, 5, 2), np.float32),
        )


@dataclass
class FaceQuality:
    """Cheap figures a site can gate on before trusting a match."""

    size_px: float  # shorter side of the detection box, in pixels
    sharpness: float  # variance of the Laplacian of the aligned grey crop
    yaw: float  # degrees, rough estimate from the nose vs the eye/mouth midline
    roll: float  # degrees, angle of the eye line


@dataclass
class Face:
    """One detected face, as returned by :meth:`Pipeline.faces`."""

    box: np.ndarray  # (4,) float32, x1 y1 x2 y2
    score: float
    landmarks: np.ndarray  # (5, 2) float32
    quality: FaceQuality
    embedding: np.ndarray | None = None  # (128,) float32, unit norm
    crop: np.ndarray | None = field(default=None, repr=False)  # aligned RGB uint8
    # Passive liveness, probability of a real face in [0, 1]; None until Pipeline.score_liveness scores it.
    liveness: float | None = None

    def to_dict(self, with_embedding: bool = True) -> dict:
        """JSON-friendly view (the CLI's ``--json`` and the service use it)."""
        out = {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 5),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "quality": {
                "size_px": round(self.quality.size_px, 1),
                "sharpness": round(self.quality.sharpness, 1),
                "yaw": round(self.quality.yaw, 1),
                "roll": round(self.quality.roll, 1),
            },
        }
        if self.liveness is not None:
            out["liveness"] = round(float(self.liveness), 5)
        if with_embedding and self.embedding is not None:
            out["embedding"] = [float(v) for v in self.embedding]
        return out
