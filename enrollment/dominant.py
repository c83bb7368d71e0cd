"""Which face of an enrollment photo to enroll when it shows several usable faces (pure; no Django).

The rule, over the usable faces only (those at or over the enrollment minimums; smaller or less sure
faces never compete). A face's *size* is the shorter side of its box; its *offset* is the distance from
its box centre to the image centre, in pixels.

1. **Size.** The largest face is at least ``SIZE_RATIO`` (1.5) times the size of every other one:
   it is taken ("largest face, 2.1x the next") -- unless another face is *central* (2a and 2b below)
   while the largest is not, which is a conflict: none is taken.
2. **Centre.** The face nearest the centre is taken ("the face nearest the centre, the next 4.0x as
   far") when (a) its offset is at most ``CENTRE_MAX_OFFSET`` (0.5) of its size (the image centre is
   on the face), (b) every other face's offset is at least ``CENTRE_OTHERS_RATIO`` (3) times its offset
   and at least ``CENTRE_OTHERS_MIN_OFFSET`` (0.5) of its size away from the centre, and (c) no face is
   ``SIZE_RATIO`` times larger than it.
3. Otherwise no face dominates: the photo stays ``several_faces`` and a person chooses.

Measured on the first photo of each of the 1,680 LFW people with >= 2 photos (bench/enroll_bench.py,
figures in the README): 235 first photos have several usable faces; the rule takes a face in 226 and the
taken face is the person of the second photo in all 226. Taking the largest face always would be wrong
in 4 of 235 (sizes within 1.15x of each other), hence the margin of 1.5. LFW photos are centred on the
person by construction, so the centre half does much of the work there; it is deliberately strict
(a wrongly enrolled face lets someone else in), and ambiguous photos go to a person instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SIZE_RATIO = 1.5
CENTRE_MAX_OFFSET = 0.5  # of the central face's size
CENTRE_OTHERS_RATIO = 3.0  # every other face at least this many times as far from the centre
CENTRE_OTHERS_MIN_OFFSET = 0.5  # ... and at least this much of the central face's size away

Box = Sequence[float]


@dataclass(frozen=True)
class Choice:
    """The face to take (an index in the boxes given; None: none dominates) and why, in words."""

    index: int | None
    reason: str


def face_size(box: Box) -> float:
    """The shorter side of a box (the engine's ``quality.size_px``)."""
    return float(min(box[2] - box[0], box[3] - box[1]))


def box_iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def _offset(box: Box, width: float, height: float) -> float:
    return math.hypot((box[0] + box[2]) / 2 - width / 2, (box[1] + box[3]) / 2 - height / 2)


def _central(sizes: list[float], offsets: list[float]) -> tuple[int, bool, float]:
    """The face nearest the centre, whether it is *central* in the sense of 2a and 2b, and how many times
    as far the next face is."""
    best = min(range(len(sizes)), key=lambda i: offsets[i])
    others = [offsets[j] for j in range(len(sizes)) if j != best]
    near = min(others)
    central = (
        offsets[best] <= CENTRE_MAX_OFFSET * sizes[best]
        and near >= CENTRE_OTHERS_RATIO * offsets[best]
        and near >= CENTRE_OTHERS_MIN_OFFSET * sizes[best]
    )
    return best, central, near / max(offsets[best], 1.0)


def dominant_face(boxes: Sequence[Box], width: float, height: float) -> Choice:
    """Apply the rule above to the usable faces' boxes ``[x1, y1, x2, y2]`` of a ``width`` x ``height`` photo."""
    if not boxes:
        return Choice(None, "no usable face")
    if len(boxes) == 1:
        return Choice(0, "the only usable face")
    sizes = [face_size(b) for b in boxes]
    offsets = [_offset(b, width, height) for b in boxes]
    by_size = sorted(range(len(boxes)), key=lambda i: -sizes[i])
    largest, runner_up = by_size[0], by_size[1]
    ratio = sizes[largest] / max(sizes[runner_up], 1e-6)
    centre, central, far = _central(sizes, offsets)
    if ratio >= SIZE_RATIO:
        if central and centre != largest:
            return Choice(None, f"the largest face ({ratio:.1f}x the next) is off-centre and another face is "
                                "at the centre")
        return Choice(largest, f"largest face, {ratio:.1f}x the next")
    if central and sizes[largest] < SIZE_RATIO * sizes[centre]:
        return Choice(centre, f"the face nearest the centre, the next {far:.1f}x as far")
    if central:
        return Choice(None, f"the face at the centre is {sizes[largest] / sizes[centre]:.1f}x smaller than the "
                            "largest")
    return Choice(None, f"the largest is only {ratio:.2f}x the next and none is clearly nearest the centre")
