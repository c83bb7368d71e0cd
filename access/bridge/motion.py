"""The motion gate and the choice of a burst's best frame: cheap arithmetic on small grey images, so that an idle
stream costs little more than decoding it."""

from __future__ import annotations

import cv2
import numpy as np

WIDTH = 160  # motion is judged on the frame scaled to this width
PIXEL_CHANGE = 25  # a grey level changing more than this between two frames counts as a changed pixel


def crop(frame: np.ndarray, roi: list[float] | None) -> np.ndarray:
    """The region of interest ([x0, y0, x1, y1] fractions of the frame), or the whole frame."""
    if not roi:
        return frame
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = roi
    return frame[int(y0 * h):max(int(y1 * h), int(y0 * h) + 1), int(x0 * w):max(int(x1 * w), int(x0 * w) + 1)]


class MotionGate:
    """Per cent of the region's pixels that changed since the previous frame, against a threshold (0: always open)."""

    def __init__(self, threshold_percent: float, roi: list[float] | None):
        self.threshold, self.roi = threshold_percent, roi
        self.previous: np.ndarray | None = None

    def changed_percent(self, frame: np.ndarray) -> float:
        region = crop(frame, self.roi)
        h, w = region.shape[:2]
        scale = WIDTH / max(w, 1)
        small = cv2.resize(region, (WIDTH, max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
        previous, self.previous = self.previous, grey
        if previous is None or previous.shape != grey.shape:
            return 0.0
        return float(np.count_nonzero(cv2.absdiff(grey, previous) > PIXEL_CHANGE)) * 100.0 / grey.size

    def moved(self, frame: np.ndarray) -> bool:
        changed = self.changed_percent(frame)
        return self.threshold <= 0 or changed >= self.threshold

    def reset(self) -> None:
        self.previous = None


def sharpness(frame: np.ndarray, roi: list[float] | None) -> float:
    """Variance of the Laplacian over the region: higher is sharper (a blurred, moving face scores low)."""
    grey = cv2.cvtColor(crop(frame, roi), cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def best_frame(frames: list[np.ndarray], roi: list[float] | None) -> int:
    """The index of the sharpest frame of a burst."""
    return max(range(len(frames)), key=lambda i: sharpness(frames[i], roi))
