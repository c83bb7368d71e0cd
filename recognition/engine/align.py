"""Face alignment: the seed's eye-line rotation, a 5-point similarity transform
to a canonical template (the default), and the seed's letterbox resize."""

from __future__ import annotations

import math

import cv2
import numpy as np

# ArcFace / InsightFace canonical 5-point template for a 112x112 crop:
# left eye, right eye, nose tip, left mouth corner, right mouth corner.
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)

GREY = (128, 128, 128)


def template(size: int, scale: float = 1.0, shift_y: float = 0.0) -> np.ndarray:
    """The ArcFace template for a ``size`` x ``size`` crop.

    ``scale`` < 1 shrinks the face inside the crop (more context, as FaceNet's
    loosely cropped training faces had); ``shift_y`` moves it down by that
    fraction of the crop.
    """
    unit = ARCFACE_112 / 112.0
    unit = (unit - 0.5) * scale + 0.5
    unit[:, 1] += shift_y
    return (unit * size).astype(np.float32)


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation)
    mapping ``src`` points onto ``dst`` (Umeyama 1991). Returns a 2x3 matrix."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    n = src.shape[0]
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / n
    scale = (s * d).sum() / var_src if var_src > 0 else 1.0
    t = dst_mean - scale * rot @ src_mean
    return np.hstack([scale * rot, t[:, None]]).astype(np.float32)


def similarity_align(
    image: np.ndarray,
    landmarks: np.ndarray,
    size: int = 112,
    dst: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``image`` so the five ``landmarks`` land on the template.

    Returns the ``size`` x ``size`` crop and the 2x3 matrix used (apply it to
    any other points with :func:`transform_points`).
    """
    dst = template(size) if dst is None else dst
    matrix = umeyama(np.asarray(landmarks, np.float32).reshape(5, 2), dst)
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    return crop, matrix


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    pts = np.asarray(points, np.float32).reshape(-1, 2)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left and right eye centres from 5-point or 68-point (iBUG) landmarks."""
    pts = np.asarray(landmarks, np.float32).reshape(-1, 2)
    if len(pts) == 5:
        return pts[0], pts[1]
    if len(pts) == 68:
        return pts[36:42].mean(0), pts[42:48].mean(0)
    raise ValueError(f"expected 5 or 68 landmarks, got {len(pts)}")


def eye_line_angle(landmarks: np.ndarray) -> float:
    """Angle of the line from the left to the right eye, degrees (image y down)."""
    left, right = eye_centres(landmarks)
    return math.degrees(math.atan2(float(right[1] - left[1]), float(right[0] - left[0])))


def rotate_to_eye_line(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The seed's alignment: rotate the image about its centre so the eyes are
    level, and map the landmarks (5 or 68) through the same matrix."""
    matrix = _eye_line_matrix(image, landmarks)
    h, w = image.shape[:2]
    rotated = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    return rotated, transform_points(landmarks, matrix)


def _eye_line_matrix(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.getRotationMatrix2D((w / 2.0, h / 2.0), eye_line_angle(landmarks), 1.0)


def letterbox(image: np.ndarray, size: int, fill: tuple[int, int, int] = GREY) -> np.ndarray:
    """The seed's letterbox: scale the longest side to ``size`` and pad the
    other side evenly with grey bars, so the face is not distorted."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    out = np.empty((size, size, 3), np.uint8)
    out[:] = fill
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top : top + nh, left : left + nw] = resized
    return out


def crop_box(image: np.ndarray, box: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Crop a detection box (plus a relative margin), clipped to the image."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    mx, my = (x2 - x1) * margin / 2, (y2 - y1) * margin / 2
    x1, y1 = max(0, int(round(x1 - mx))), max(0, int(round(y1 - my)))
    x2, y2 = min(w, int(round(x2 + mx))), min(h, int(round(y2 + my)))
    return image[y1:y2, x1:x2]


def eye_line_align(
    image: np.ndarray, box: np.ndarray, landmarks: np.ndarray, size: int = 160, margin: float = 0.2
) -> np.ndarray:
    """The seed's full road: rotate to the eye line, crop the (rotated) box,
    letterbox to ``size``."""
    rotated, _ = rotate_to_eye_line(image, landmarks)
    corners = np.array([[box[0], box[1]], [box[2], box[1]], [box[0], box[3]], [box[2], box[3]]])
    c = transform_points(corners, _eye_line_matrix(image, landmarks))
    new_box = np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()])
    face = crop_box(rotated, new_box, margin)
    if face.size == 0:
        face = rotated
    return letterbox(face, size)
