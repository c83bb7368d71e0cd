"""WIDER FACE style detection data for RetinaFace training: label reader and augmentation.

Label file (the RetinaFace ``train/label.txt`` layout)::

    # 0--Parade/0_Parade_marchingband_1_849.jpg
    449 330 122 149 488.906 373.643 0.0 542.089 376.442 0.0 515.031 412.83 0.0 485.174 425.893 0.0 ...
    ...

(the face line continues with the mouth corners and a score), i.e.
a ``# <path>`` line per image (relative to the images directory), then one line per face:
``x y w h`` followed by five landmarks as ``x y visibility`` (left eye, right eye, nose, left
mouth corner, right mouth corner) and a trailing score; landmarks are ``-1`` when absent.
Lines with only the box (the validation labels) have no landmarks.

Augmentation follows the classic recipe: random square crop keeping the faces whose centre it
contains, colour distortion, horizontal flip (swapping left/right eyes and mouth corners),
pad-to-square and resize to the training size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

# after a horizontal flip, image-left becomes image-right: swap the eyes and the mouth corners
FLIP_ORDER = [1, 0, 2, 4, 3]
CROP_SCALES = (0.3, 0.45, 0.6, 0.8, 1.0)


@dataclass
class Annotation:
    """One image's faces: boxes (N, 4) x1 y1 x2 y2 pixels, landmarks (N, 5, 2), has_landmarks (N,)."""

    path: Path
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, 5, 2), np.float32))
    has_landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0,), bool))


def read_wider_labels(label_file: Path, images_dir: Path) -> list[Annotation]:
    """Parse a WIDER FACE / RetinaFace label file. Faces with a non-positive width or height are dropped."""
    out: list[Annotation] = []
    rows: list[list[float]] = []

    def flush() -> None:
        if not out:
            return
        boxes, lms, has = [], [], []
        for v in rows:
            x, y, w, h = v[:4]
            if w <= 0 or h <= 0:
                continue
            boxes.append([x, y, x + w, y + h])
            if len(v) >= 19:
                pts = np.asarray(v[4:19], np.float32).reshape(5, 3)[:, :2]
                ok = bool(pts[0, 0] >= 0)  # the reference reader's test: -1 marks absent landmarks
            else:
                pts, ok = np.zeros((5, 2), np.float32), False
            lms.append(pts if ok else np.zeros((5, 2), np.float32))
            has.append(ok)
        a = out[-1]
        a.boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        a.landmarks = np.asarray(lms, np.float32).reshape(-1, 5, 2)
        a.has_landmarks = np.asarray(has, bool).reshape(-1)

    for lineno, line in enumerate(Path(label_file).read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            flush()
            rows = []
            out.append(Annotation(Path(images_dir) / line[1:].strip()))
        else:
            if not out:
                raise ValueError(f"{label_file}:{lineno}: a face line before any '# path' line")
            try:
                rows.append([float(t) for t in line.split()])
            except ValueError as exc:
                raise ValueError(f"{label_file}:{lineno}: not numbers: {line[:60]}") from exc
            if len(rows[-1]) < 4:
                raise ValueError(f"{label_file}:{lineno}: a face needs at least x y w h")
    flush()
    return out


# ------------------------------------------------------------------------------ augmentation


def _uniform(lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(()))


def random_crop(img: np.ndarray, boxes: np.ndarray, lms: np.ndarray, has: np.ndarray, tries: int = 250):
    """A random square crop (side = a scale of the short side) that contains the centre of at
    least one face; faces whose centre falls outside are dropped, boxes are clipped to the crop.
    Returns ``None`` when no try succeeds (the caller pads the whole image instead)."""
    h, w = img.shape[:2]
    short = min(h, w)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    for _ in range(tries):
        side = int(CROP_SCALES[int(torch.randint(len(CROP_SCALES), ()))] * short)
        if side < 1:
            continue
        left = int(torch.randint(w - side + 1, ()))
        top = int(torch.randint(h - side + 1, ()))
        inside = (
            (centres[:, 0] > left)
            & (centres[:, 0] < left + side)
            & (centres[:, 1] > top)
            & (centres[:, 1] < top + side)
        )
        if not inside.any():
            continue
        b = boxes[inside].copy()
        b[:, [0, 2]] = np.clip(b[:, [0, 2]] - left, 0, side)
        b[:, [1, 3]] = np.clip(b[:, [1, 3]] - top, 0, side)
        keep = (b[:, 2] - b[:, 0] > 1) & (b[:, 3] - b[:, 1] > 1)
        if not keep.any():
            continue
        lm = lms[inside][keep] - [left, top]
        return img[top : top + side, left : left + side], b[keep], lm.astype(np.float32), has[inside][keep]
    return None


def distort_colour(img: np.ndarray) -> np.ndarray:
    """Brightness, contrast, saturation and hue jitter, each with probability 1/2."""
    x = img.astype(np.float32)
    if torch.rand(()) < 0.5:
        x += _uniform(-32, 32)
    if torch.rand(()) < 0.5:
        x *= _uniform(0.5, 1.5)
    x = np.clip(x, 0, 255).astype(np.uint8)
    if torch.rand(()) < 0.5 or torch.rand(()) < 0.5:
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV).astype(np.float32)
        if torch.rand(()) < 0.5:
            hsv[..., 1] = np.clip(hsv[..., 1] * _uniform(0.5, 1.5), 0, 255)
        if torch.rand(()) < 0.5:
            hsv[..., 0] = (hsv[..., 0] + _uniform(-9, 9)) % 180  # OpenCV hue is 0..179
        x = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    return x


def flip(img: np.ndarray, boxes: np.ndarray, lms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mirror horizontally; the landmark order is kept semantic (left eye = image left)."""
    w = img.shape[1]
    b = boxes.copy()
    b[:, 0], b[:, 2] = w - boxes[:, 2], w - boxes[:, 0]
    lm = lms.copy()
    lm[..., 0] = w - lm[..., 0]
    return np.ascontiguousarray(img[:, ::-1]), b, lm[:, FLIP_ORDER]


def pad_to_square(img: np.ndarray, fill: tuple[int, int, int]) -> np.ndarray:
    h, w = img.shape[:2]
    side = max(h, w)
    out = np.empty((side, side, 3), np.uint8)
    out[:] = fill
    out[:h, :w] = img
    return out


@dataclass
class DetectionAugment:
    """The training transform: crop, colour, flip, pad, resize to ``size`` x ``size``."""

    size: int = 640
    crop: bool = True
    colour: bool = True
    mirror: bool = True
    fill: tuple[int, int, int] = (123, 117, 104)  # the RGB mean: zero after the net's mean subtraction

    def __call__(self, img, boxes, lms, has):
        if self.crop and len(boxes):
            cropped = random_crop(img, boxes, lms, has)
            if cropped is not None:
                img, boxes, lms, has = cropped
        if self.colour:
            img = distort_colour(img)
        if self.mirror and torch.rand(()) < 0.5:
            img, boxes, lms = flip(img, boxes, lms)
        img = pad_to_square(img, self.fill)
        return resize_square(img, boxes, lms, has, self.size)


def resize_square(img, boxes, lms, has, size: int):
    """Resize a square image to ``size`` (random interpolation) and scale the targets."""
    interps = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_NEAREST, cv2.INTER_LANCZOS4)
    scale = size / img.shape[0]
    img = cv2.resize(img, (size, size), interpolation=interps[int(torch.randint(len(interps), ()))])
    return img, boxes * scale, lms * scale, has


class WiderFaceDataset(Dataset):
    """Items: (RGB uint8 ``size`` x ``size`` image, targets float32 (N, 15)).

    Target row: box x1 y1 x2 y2 and the 10 landmark coordinates, normalised to [0, 1] by the
    image size, then 1.0 when the face has landmarks, else 0.0 (its landmark values are zeros).
    ``augment=None`` only pads to square and resizes (evaluation / overfit checks).
    """

    def __init__(self, annotations: list[Annotation], size: int = 640, augment: DetectionAugment | None = None):
        self.items = annotations
        self.size = size
        self.augment = augment

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        from .data import read_rgb

        a = self.items[index]
        img = read_rgb(a.path)
        boxes, lms, has = a.boxes.copy(), a.landmarks.copy(), a.has_landmarks.copy()
        if self.augment is not None:
            img, boxes, lms, has = self.augment(img, boxes, lms, has)
        else:
            img = pad_to_square(img, DetectionAugment.fill)
            scale = self.size / img.shape[0]
            img = cv2.resize(img, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
            boxes, lms = boxes * scale, lms * scale
        lms = np.where(has[:, None, None], lms, 0.0)
        t = np.concatenate([boxes / self.size, lms.reshape(-1, 10) / self.size, has[:, None]], 1)
        return img, t.astype(np.float32)


def collate_detection(batch) -> tuple[np.ndarray, list[torch.Tensor]]:
    return np.stack([b[0] for b in batch]), [torch.from_numpy(b[1]) for b in batch]
