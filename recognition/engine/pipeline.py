"""The one object the worker, the CLI and the benchmarks use:
detect -> align -> embed, batched, loaded once."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from . import registry
from .align import similarity_align, template
from .detection_policy import DetectionPolicy
from .detector import RetinaFaceDetector
from .embedders import EMBEDDER_CLASSES, Embedder, build_net
from .types import Detections, Face, FaceQuality

if TYPE_CHECKING:  # the liveness module is imported only when liveness is used
    from .liveness import LivenessModel


def pick_device(device: str | torch.device | None = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def face_quality(box: np.ndarray, landmarks: np.ndarray, crop: np.ndarray | None) -> FaceQuality:
    """Size, sharpness and a rough head pose from the five landmarks."""
    size = float(min(box[2] - box[0], box[3] - box[1]))
    left, right, nose, mouth_l, mouth_r = (np.asarray(p, np.float64) for p in landmarks)
    dx, dy = right - left
    roll = math.degrees(math.atan2(dy, dx))
    # In the eye-line frame a frontal nose sits half-way between the eyes; its
    # offset relative to half the eye distance approximates sin(yaw).
    eye_dist = math.hypot(dx, dy) or 1.0
    axis = np.array([dx, dy]) / eye_dist
    mid = (left + right + mouth_l + mouth_r) / 4.0
    offset = float(np.dot(nose - mid, axis)) / (eye_dist / 2.0)
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, offset))))
    sharpness = 0.0
    if crop is not None and crop.size:
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    return FaceQuality(size_px=size, sharpness=sharpness, yaw=yaw, roll=roll)


class Pipeline:
    """RetinaFace -> 5-point alignment -> 128-d embedder.

    ``faces(images)`` takes a batch of RGB uint8 images and returns, per image,
    the list of :class:`Face` found (highest score first). Passive liveness is opt-in:
    ``score_liveness(image, faces)`` scores the faces a caller chooses (see there).
    """

    def __init__(self, detector: RetinaFaceDetector, embedder: Embedder, spec: registry.ModelSpec,
                 liveness: LivenessModel | None = None):
        self.detector = detector
        self.embedder = embedder
        self.spec = spec
        self.crop_size = int(embedder.input_size)
        self.template = template(self.crop_size, spec.align_scale, spec.align_shift_y)
        self.liveness_model = liveness

    @classmethod
    def load(
        cls,
        embedder: str | None = None,
        device: str | torch.device | None = None,
        fp16: bool = False,
        score_threshold: float = 0.6,
        max_side: int = 640,
        detection: DetectionPolicy | str | None = None,
        liveness: bool = False,
    ) -> Pipeline:
        """Build the default (or named) pipeline from the weights cache.

        ``detection``: the detection policy used when a call passes none (default: standard).
        ``liveness``: also load the (optional) liveness models now; a :class:`registry.WeightsError`
        saying how to install them when they are absent. Without it they load on the first
        :meth:`score_liveness` call."""
        dev = pick_device(device)
        fp16 = fp16 and dev.type == "cuda"
        detector = RetinaFaceDetector.from_state_dict(
            registry.load_state_dict(registry.DETECTOR),
            device=dev,
            score_threshold=score_threshold,
            max_side=max_side,
            fp16=fp16,
            policy=detection,
        )
        spec = registry.get_spec(embedder or registry.default_embedder_name())
        if spec.kind != "embedder":
            raise registry.WeightsError(f"{spec.name} is not an embedder")
        live = None
        if liveness:
            from .liveness import LivenessModel

            live = LivenessModel.load(dev)
        return cls(detector, load_embedder(spec, dev, fp16), spec, liveness=live)

    # What travels with every embedding.
    @property
    def embedder_name(self) -> str:
        return self.spec.name

    @property
    def embedder_version(self) -> str:
        return self.spec.version

    @property
    def default_threshold(self) -> float:
        if self.spec.default_threshold is None:
            raise registry.WeightsError(f"{self.spec.name} has no measured identification threshold")
        return self.spec.default_threshold

    @property
    def device(self) -> torch.device:
        return self.detector.device

    def score_liveness(self, image: np.ndarray, faces: Sequence[Face]) -> list[float]:
        """Score passive liveness for ``faces`` (found in ``image``, RGB uint8) and store it in
        each ``face.liveness``: the probability of a real face in [0, 1] (compare it with
        :data:`recognition.engine.liveness.DEFAULT_LIVENESS_THRESHOLD`). Only the faces given are
        scored, all of them in one batch, so a caller can score just the face it is about to
        trust. Loads the liveness models on first use (a :class:`registry.WeightsError` when
        they are not installed)."""
        if not faces:
            return []
        if self.liveness_model is None:
            from .liveness import LivenessModel

            self.liveness_model = LivenessModel.load(self.device)
        scores = self.liveness_model.score(image, np.stack([np.asarray(f.box, np.float32) for f in faces]))
        for face, value in zip(faces, scores, strict=True):
            face.liveness = float(value)
        return [float(v) for v in scores]

    def detect(self, images: Sequence[np.ndarray], detection: DetectionPolicy | str | None = None) -> list[Detections]:
        """Faces per image; ``detection`` is a :class:`DetectionPolicy` or a preset name
        (``"standard"``, ``"small_faces"``), None for the pipeline's default."""
        return self.detector.detect(images, policy=detection)

    def align(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        crop, _ = similarity_align(image, landmarks, self.crop_size, self.template)
        return crop

    def embed_crops(self, crops: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, 128), np.float32)
        return self.embedder.embed(np.stack(list(crops)))

    def faces(
        self,
        images: Sequence[np.ndarray],
        embed: bool = True,
        return_crops: bool = False,
        flip_tta: bool = False,
        detection: DetectionPolicy | str | None = None,
        timings: dict[str, float] | None = None,
        batch_by_size: bool = False,
    ) -> list[list[Face]]:
        """Detect, align and (optionally) embed every face of every image.

        Detection runs as one batch over the images and embedding as one batch
        over all their faces. ``flip_tta`` adds the embedding of the mirrored
        crop before normalising (a little more accurate, twice the cost). ``detection``: the
        detection policy (see :meth:`detect`). ``timings``: when given, the milliseconds spent
        detecting (``"detect"``) and aligning + embedding (``"embed"``) are stored in it.
        ``batch_by_size``: images of different sizes are detected in one batch per size instead
        of being padded to a common size (padding can move landmarks by a fraction of a pixel:
        embedding cosine ~0.998 against the image alone); each face is then exactly what the
        image alone gives. Embedding stays one batch over all the faces.
        """
        started = time.perf_counter()
        sizes: dict[tuple[int, ...], list[int]] = {}
        if batch_by_size:
            for k, image in enumerate(images):
                sizes.setdefault(tuple(getattr(image, "shape", ())[:2]), []).append(k)
        if len(sizes) > 1:
            detections: list[Detections] = [Detections.empty() for _ in images]
            for members in sizes.values():
                found = self.detect([images[k] for k in members], detection=detection)
                for k, det in zip(members, found, strict=True):
                    detections[k] = det
        else:
            detections = self.detect(images, detection=detection)
        detected = time.perf_counter()
        out: list[list[Face]] = []
        crops: list[np.ndarray] = []
        for image, det in zip(images, detections, strict=True):
            faces = []
            for i in range(len(det)):
                crop = self.align(image, det.landmarks[i])
                crops.append(crop)
                faces.append(
                    Face(
                        box=det.boxes[i],
                        score=float(det.scores[i]),
                        landmarks=det.landmarks[i],
                        quality=face_quality(det.boxes[i], det.landmarks[i], crop),
                        crop=crop if return_crops else None,
                    )
                )
            out.append(faces)
        if embed and crops:
            vectors = self.embed_crops(crops)
            if flip_tta:
                vectors = vectors + self.embed_crops([c[:, ::-1] for c in crops])
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            flat = [f for faces in out for f in faces]
            for face, vec in zip(flat, vectors, strict=True):
                face.embedding = vec.astype(np.float32)
        if timings is not None:
            timings["detect"] = (detected - started) * 1000.0
            timings["embed"] = (time.perf_counter() - detected) * 1000.0
        return out


def load_embedder(spec: registry.ModelSpec, device: torch.device, fp16: bool = False) -> Embedder:
    net = build_net(spec.arch)
    net.load_state_dict(registry.load_state_dict(spec), strict=True)
    emb = EMBEDDER_CLASSES[spec.arch](net, device=device, fp16=fp16)
    emb.name, emb.version = spec.name, spec.version
    return emb
