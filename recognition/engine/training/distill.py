"""Knowledge distillation: train a student embedder to reproduce a pretrained teacher's embeddings.

``train-facenet --loss distill --teacher sface`` trains e.g. the seed's MobileNetV1 FaceNet
(160x160 crops, facenet-mobilenet template) so that its unit embedding points where SFace's does
(112x112 crops, ArcFace template). The student never sees identity labels; the teacher's geometry
of the face space is the only target, so the student also inherits its thresholds' scale.

Teacher crops are derived from the student's aligned crops: both templates are the same five
points scaled and shifted, so the teacher's alignment of the raw photo is a fixed similarity
transform of the student's crop (:func:`crop_transform`) -- no second detection pass, and any
folder of aligned crops can be distilled on. Teacher embeddings are computed once per image (with
flip test-time augmentation by default) and cached in an npz keyed by the image file's content.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from .data import FaceFolder

if TYPE_CHECKING:
    from ..embedders import Embedder
    from ..registry import ModelSpec


class DistillLoss(nn.Module):
    """Embedding distillation on the unit sphere.

    With ``s_i = normalize(student features)`` and ``t_i`` the teacher's unit embedding::

        L = mean_i (1 - <s_i, t_i>) + rel_weight * mean_{i != j} (<s_i, s_j> - <t_i, t_j>)^2

    The first term pulls every student embedding onto its teacher's (it equals half the MSE
    between unit vectors); the relational term matches the batch's pairwise cosine matrix, i.e.
    the distances that verification thresholds act on. ``components`` holds the detached terms
    of the last call (``teacher_cos``: the mean student-teacher cosine, the number that should rise).
    """

    def __init__(self, rel_weight: float = 1.0) -> None:
        super().__init__()
        self.rel_weight = float(rel_weight)
        self.components: dict[str, float] = {}

    def forward(self, features: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        s = F.normalize(features.float(), p=2, dim=1)
        t = F.normalize(teacher.float(), p=2, dim=1)
        cos = (s * t).sum(1)
        direct = (1.0 - cos).mean()
        n = len(s)
        rel = s.new_zeros(())
        if n > 1:
            off = ~torch.eye(n, dtype=torch.bool, device=s.device)
            rel = ((s @ s.T - t @ t.T)[off] ** 2).mean()
        self.components = {
            "teacher_cos": float(cos.detach().mean()),
            "direct_loss": float(direct.detach()),
            "rel_loss": float(rel.detach()),
        }
        return direct + self.rel_weight * rel


def embedder_spec(arch: str) -> ModelSpec:
    """The registry spec whose crops ``arch`` is trained on (its alignment template)."""
    from .. import registry

    return next(s for s in registry.MODELS.values() if s.kind == "embedder" and s.arch == arch)


def crop_transform(
    student_size: int, student_spec: ModelSpec, teacher_size: int, teacher_spec: ModelSpec
) -> np.ndarray:
    """2x3 matrix from student-crop pixels to teacher-crop pixels (exact: the templates differ by
    a similarity, and a least-squares similarity fit commutes with one)."""
    from ..align import template, umeyama

    src = template(student_size, student_spec.align_scale, student_spec.align_shift_y)
    dst = template(teacher_size, teacher_spec.align_scale, teacher_spec.align_shift_y)
    return umeyama(src, dst)


def teacher_crop(crop: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The teacher's aligned crop made from the student's (black outside, as the engine aligns)."""
    crop = np.ascontiguousarray(crop)
    return cv2.warpAffine(crop, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)


def _file_key(path: Path) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def teacher_embeddings(
    dataset: FaceFolder,
    teacher: Embedder,
    matrix: np.ndarray,
    cache_file: Path | None = None,
    flip: bool = True,
    batch_size: int = 64,
    progress: bool = True,
) -> np.ndarray:
    """(N, 128) float32 unit teacher embeddings of every ``dataset`` image (no augmentation).

    ``teacher`` is an engine :class:`~recognition.engine.embedders.Embedder`. ``cache_file``
    (npz: ``keys`` = sha1 of each image file, ``vectors``) is read first and rewritten with
    anything new, so a re-run, a resume or a second run on the same crops embeds nothing.
    """
    from tqdm import tqdm

    keys = [_file_key(p) for p in dataset.paths]
    known: dict[str, np.ndarray] = {}
    if cache_file is not None and Path(cache_file).is_file():
        z = np.load(cache_file, allow_pickle=False)
        known = dict(zip(z["keys"].tolist(), z["vectors"], strict=True))
    todo = [i for i, k in enumerate(keys) if k not in known]
    size = int(teacher.input_size)
    starts = range(0, len(todo), batch_size)
    for s in tqdm(starts, desc="teacher", unit="batch", disable=not progress or not todo):
        idx = todo[s : s + batch_size]
        crops = np.stack([teacher_crop(dataset.load(i), matrix, size) for i in idx])
        v = teacher.embed(crops)
        if flip:
            v = v + teacher.embed(np.ascontiguousarray(crops[:, :, ::-1]))
            v = v / np.linalg.norm(v, axis=1, keepdims=True)
        for i, vec in zip(idx, v, strict=True):
            known[keys[i]] = vec.astype(np.float32)
    if cache_file is not None and todo:
        cache_file = Path(cache_file)
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(cache_file.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, keys=np.array(sorted(known)), vectors=np.stack([known[k] for k in sorted(known)]))
        os.replace(tmp, cache_file)
    return np.stack([known[k] for k in keys]).astype(np.float32)


class WithIndex(Dataset):
    """``(crop, index)`` items, so a batch can look up its cached teacher targets."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.base[index][0], index


def add_distill_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--teacher",
        default="sface",
        help="--loss distill: registry embedder whose embeddings the student learns to reproduce",
    )
    group.add_argument(
        "--teacher-cache",
        default=None,
        help="--loss distill: folder for the cached teacher embeddings (None: OUT)",
    )
    group.add_argument(
        "--no-teacher-flip", action="store_true", help="--loss distill: no flip averaging of the targets"
    )


def prepare(
    args: argparse.Namespace, train_set: FaceFolder, arch: str, size: int, device: torch.device, out: Path
) -> tuple[Dataset, torch.Tensor, DistillLoss, dict]:
    """Everything ``train-facenet --loss distill`` needs: the indexed dataset, the teacher targets
    (on ``device``), the loss and a description for ``model.json``."""
    from .. import registry
    from ..pipeline import load_embedder
    from .facenet import parse_loss_args

    try:
        criterion = DistillLoss(**parse_loss_args(args.loss_arg))
    except TypeError as exc:
        raise ValueError(f"--loss-arg for distill: {exc} (it takes rel_weight=...)") from None
    spec = registry.get_spec(args.teacher)
    if spec.kind != "embedder" or not spec.pretrained:
        raise ValueError(f"--teacher {args.teacher}: not a pretrained embedder")
    teacher = load_embedder(spec, device)
    matrix = crop_transform(size, embedder_spec(arch), int(teacher.input_size), spec)
    flip = not args.no_teacher_flip
    geometry = hashlib.sha1(np.round(matrix, 5).tobytes() + bytes([flip])).hexdigest()[:10]
    cache = Path(args.teacher_cache or out) / f"teacher-{spec.key}-{geometry}.npz"
    targets = teacher_embeddings(train_set, teacher, matrix, cache, flip, progress=not args.no_progress)
    del teacher  # its weights are not needed any more
    info = {"name": spec.name, "version": spec.version, "flip": flip, "cache": str(cache)}
    return WithIndex(train_set), torch.from_numpy(targets).to(device), criterion, info


def agreement(student: np.ndarray, teacher: np.ndarray) -> float:
    """Mean cosine between matching rows of two sets of unit embeddings."""
    return float(np.mean(np.sum(np.asarray(student) * np.asarray(teacher), axis=1)))
