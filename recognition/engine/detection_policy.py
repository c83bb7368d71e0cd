"""How the detector sizes an image for the network: the detection policy.

RetinaFace (MobileNet-0.25) finds a face reliably once it is about 28-32 px
wide at the network input (LFW faces pasted on a grey 640x480 canvas, found at
score >= 0.6: 16 px 54%, 20 px 81%, 24 px 97.5%, 28 px 99%, 32 px 100%). The
detector shrinks every image so its long side is at most ``max_side`` (640):
cheap, and right for a door where people stand close, but a 1920x1080 frame
is divided by 3, so a 60 px face reaches the network at 20 px and a 40 px face
at 13 px.

A :class:`DetectionPolicy` with ``min_face_px`` adds a second, *fine* pass at
the scale where a face of ``min_face_px`` (in the original image) measures
``face_px_at_net`` at the network input, when that scale is larger than the
ordinary (coarse) pass's. With ``max_upscale`` 1 (the default) that happens
only for images larger than ``max_side``: a 640x480 snapshot gets the single
ordinary pass, at the same cost, under every such policy. The coarse pass
always runs and owns the big faces; the fine pass contributes the faces the
coarse pass sees narrower than ``handoff_px`` and the two are merged by
non-maximum suppression (:func:`.detector.merge_passes`). A high-resolution
pass alone would not do: on a face 400 px wide or more it reports the eyes,
an ear or half the face as faces of their own.

The default, :data:`STANDARD`, is today's behaviour exactly (one pass).
:data:`SMALL_FACES` keeps faces of 32 px and more findable in images up to
3840 px long side (4K) by adding a full-resolution pass; beyond that the fine
pass is capped at ``max_fine_side`` pixels long to bound its cost, so the
smallest findable face grows in proportion (64 px on a 7680 px wide image).

A policy is a frozen dataclass, hashable and comparable, and round-trips
through :meth:`DetectionPolicy.as_dict` / :meth:`DetectionPolicy.parse`, so a
service can store it per site (as a preset name or a small JSON object).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class DetectionPolicy:
    """Which scales the detector runs an image at.

    ``min_face_px``: the smallest face width, in pixels of the original image,
    the detector must keep findable; ``None`` (the default) runs the single
    coarse pass only. ``face_px_at_net``: the width such a face gets at the
    network input in the fine pass. ``max_fine_side``: the long side of the
    fine pass's network input never exceeds this (cost bound).
    ``max_upscale``: the fine pass may enlarge an image up to this factor
    (1.0: never enlarge; faces smaller than ``face_px_at_net`` in small images
    then stay as they are). ``handoff_px``: the fine pass contributes only
    faces the coarse pass sees narrower than this (at its network input);
    bigger ones are the coarse pass's alone, because at high resolution
    RetinaFace reports parts of a close face (an eye, half a face) as faces.
    ``max_side``: the coarse pass's long side, in place of the detector's own
    (640); smaller is cheaper (cost goes with the pixels) and loses small faces
    in proportion (:data:`CLOSE`).
    """

    def coarse_side(self, detector_max_side: int) -> int:
        """The coarse pass's long side under this policy, for a detector whose own is ``detector_max_side``."""
        return int(self.max_side) if self.max_side is not None else int(detector_max_side)

    name: str = "standard"
    min_face_px: float | None = None
    max_side: int | None = None
    face_px_at_net: float = 32.0
    max_fine_side: int = 3840
    max_upscale: float = 1.0
    handoff_px: float = 64.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("DetectionPolicy.name must be a non-empty string")
        if self.min_face_px is not None and not (self.min_face_px > 0 and math.isfinite(self.min_face_px)):
            raise ValueError(f"min_face_px must be a positive number or None, got {self.min_face_px!r}")
        if not (self.face_px_at_net > 0 and math.isfinite(self.face_px_at_net)):
            raise ValueError(f"face_px_at_net must be positive, got {self.face_px_at_net!r}")
        if self.max_side is not None and (not isinstance(self.max_side, int) or self.max_side < 32):
            raise ValueError(f"max_side must be an integer of at least 32 or None, got {self.max_side!r}")
        if int(self.max_fine_side) < 1:
            raise ValueError(f"max_fine_side must be >= 1, got {self.max_fine_side!r}")
        if not (self.max_upscale >= 1.0 and math.isfinite(self.max_upscale)):
            raise ValueError(f"max_upscale must be >= 1, got {self.max_upscale!r}")
        if not (self.handoff_px > 0 and math.isfinite(self.handoff_px)):
            raise ValueError(f"handoff_px must be positive, got {self.handoff_px!r}")

    # ------------------------------------------------------------------ scales

    @staticmethod
    def coarse_scale(height: int, width: int, max_side: int) -> float:
        """The ordinary pass's scale: shrink so the long side is at most ``max_side``, never enlarge."""
        return min(1.0, max_side / max(height, width))

    def fine_scale(self, height: int, width: int, max_side: int) -> float | None:
        """Scale of the extra high-resolution pass for an image, or ``None`` when it is not needed.

        Needed when the coarse pass would show a ``min_face_px`` face smaller
        than ``face_px_at_net``; the result is capped by ``max_upscale`` and
        ``max_fine_side`` and is returned only when it is meaningfully (more
        than 5%) larger than the coarse scale.
        """
        if self.min_face_px is None or height <= 0 or width <= 0:
            return None
        long_side = max(height, width)
        coarse = self.coarse_scale(height, width, max_side)
        want = min(self.face_px_at_net / self.min_face_px, self.max_upscale, self.max_fine_side / long_side)
        return want if want > coarse * 1.05 else None

    # ------------------------------------------------------------------ storage

    def as_dict(self) -> dict:
        """JSON-friendly fields (what a service stores); :meth:`parse` reads it back."""
        return dataclasses.asdict(self)

    @classmethod
    def parse(cls, value: DetectionPolicy | str | Mapping | None) -> DetectionPolicy:
        """A policy from ``None`` (:data:`STANDARD`), a preset name, a dict of fields, or a policy."""
        if value is None:
            return STANDARD
        if isinstance(value, DetectionPolicy):
            return value
        if isinstance(value, str):
            try:
                return PRESETS[value]
            except KeyError:
                raise ValueError(f"unknown detection policy {value!r}; presets: {', '.join(PRESETS)}") from None
        if isinstance(value, Mapping):
            fields = {f.name for f in dataclasses.fields(cls)}
            unknown = set(value) - fields
            if unknown:
                raise ValueError(f"unknown detection policy fields: {', '.join(sorted(unknown))}")
            if set(value) == {"name"}:
                return cls.parse(value["name"])
            return cls(**dict(value))
        raise TypeError(f"expected a DetectionPolicy, a preset name, a dict or None, got {type(value).__name__}")


STANDARD = DetectionPolicy()
"""One pass, long side shrunk to the detector's ``max_side`` (640): today's behaviour."""

SMALL_FACES = DetectionPolicy(name="small_faces", min_face_px=32.0, face_px_at_net=32.0)
"""Faces of 32 px and more stay findable in images up to 3840 px long side (adds a full-resolution pass)."""

CLOSE = DetectionPolicy(name="close", max_side=320)
"""A door where people stand close: one pass with the long side at 320 px, about a quarter of the standard pass's
cost; a face must be about 64 px wide in a 640x480 snapshot (128 px at 1280x720) to be found reliably."""
PRESETS: dict[str, DetectionPolicy] = {p.name: p for p in (STANDARD, SMALL_FACES, CLOSE)}
