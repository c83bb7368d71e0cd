"""Pictures people would rather look at than read: annotated detections."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .gallery import UNKNOWN
from .types import Face

LANDMARK_COLOURS = [(255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 0, 255), (0, 255, 255)]  # BGR


def annotate(image: np.ndarray, faces: list[Face], labels: list[tuple[str, float]] | None, out: Path) -> None:
    """Draw boxes, the five landmarks and optional (name, distance) labels;
    green for a known person, red for Unknown, yellow when unlabelled."""
    canvas = np.ascontiguousarray(image[:, :, ::-1]).copy()
    thick = max(1, round(max(image.shape[:2]) / 400))
    for i, face in enumerate(faces):
        name, dist = labels[i] if labels else (None, None)
        colour = (0, 200, 255) if name is None else ((0, 0, 230) if name == UNKNOWN else (0, 190, 0))
        x1, y1, x2, y2 = (int(round(float(v))) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thick)
        for (x, y), c in zip(face.landmarks, LANDMARK_COLOURS, strict=True):
            cv2.circle(canvas, (int(round(float(x))), int(round(float(y)))), thick + 1, c, -1)
        text = f"{face.score:.2f}" if name is None else f"{name} {dist:.2f}"
        scale = 0.4 * thick
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 4 if y1 - th - 6 > 0 else y2 + th + 4
        cv2.rectangle(canvas, (x1, ty - th - 3), (x1 + tw + 4, ty + base - 1), colour, -1)
        cv2.putText(canvas, text, (x1 + 2, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), canvas):
        raise OSError(f"cannot write {out} (use a .jpg or .png name)")
