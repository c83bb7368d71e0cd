"""End-of-epoch evaluation hooks ``evaluate(model) -> dict`` for FaceNet training.

- :func:`lfw_pairs_evaluator`: an LFW pairs file (e.g. View 1 ``pairsDevTest.txt``) through the
  engine's own detect -> align -> embed path (``evaluation.embed_paths``), with the network being
  trained as the embedder; detections are computed once and reused every epoch.
- :func:`folder_pairs_evaluator`: verification pairs drawn from a folder of aligned crops of
  held-out identities (no detector, no weights needed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import evaluation as ev

Evaluate = Callable[[nn.Module], Mapping[str, float]]


def lfw_pairs_evaluator(
    pairs_file: Path, lfw_root: Path, arch: str, device: torch.device | str, flip: bool = False, progress: bool = False
) -> Evaluate:
    """Accuracy (k-fold threshold), AUC and threshold on ``pairs_file`` for the model being trained."""
    from .. import registry
    from ..detector import RetinaFaceDetector
    from ..embedders import EMBEDDER_CLASSES
    from ..pipeline import Pipeline

    pairs = ev.read_pairs(Path(pairs_file), Path(lfw_root))
    spec = next(s for s in registry.MODELS.values() if s.kind == "embedder" and s.arch == arch)
    detector = RetinaFaceDetector.from_state_dict(registry.load_state_dict(registry.DETECTOR), device=device)
    memo: dict[bytes, object] = {}

    class _MemoPipeline(Pipeline):
        def detect(self, images: Sequence[np.ndarray]):
            keys = [hashlib.sha1(im.tobytes()).digest() + bytes(str(im.shape), "ascii") for im in images]
            todo = [i for i, k in enumerate(keys) if k not in memo]
            if todo:
                for i, det in zip(todo, detector.detect([images[i] for i in todo]), strict=True):
                    memo[keys[i]] = det
            return [memo[k] for k in keys]

    def evaluate(model: nn.Module) -> dict[str, float]:
        embedder = EMBEDDER_CLASSES[arch](model, device=device)
        pipe = _MemoPipeline(detector, embedder, spec)
        emb = ev.embed_paths(pipe, pairs.images, flip=flip, progress=progress, desc="lfw")
        rep = ev.verification_report(emb, pairs)
        return {"lfw_accuracy": rep["accuracy_mean"], "lfw_auc": rep["auc"], "lfw_threshold": rep["threshold_all"]}

    return evaluate


def verification_pairs(labels: Sequence[int], max_pairs: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``max_pairs`` genuine pairs and as many impostor pairs, deterministic: (pairs (M,2), same (M,))."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    i, j = np.triu_indices(len(labels), 1)
    same = labels[i] == labels[j]
    gen, imp = np.flatnonzero(same), np.flatnonzero(~same)
    n = min(max_pairs, len(gen), len(imp))
    pick = np.concatenate([rng.choice(gen, n, replace=False), rng.choice(imp, n, replace=False)])
    return np.stack([i[pick], j[pick]], 1), same[pick]


def embed_crops(
    model: nn.Module,
    crops: np.ndarray,
    preprocess: Callable[[np.ndarray], torch.Tensor],
    device: torch.device | str,
    batch_size: int = 64,
) -> np.ndarray:
    """Unit-norm embeddings of aligned uint8 crops with ``model`` (in whatever mode it is)."""
    out = []
    with torch.no_grad():
        for s in range(0, len(crops), batch_size):
            e = model(preprocess(crops[s : s + batch_size]).to(device)).float()
            out.append(torch.nn.functional.normalize(e, dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 128), np.float32)


def folder_pairs_evaluator(
    crops: np.ndarray,
    labels: Sequence[int],
    preprocess: Callable[[np.ndarray], torch.Tensor],
    device: torch.device | str,
    max_pairs: int = 3000,
) -> Evaluate:
    """Verification on held-out aligned crops: 10-fold accuracy, AUC, mean genuine / impostor distance."""
    pairs, same = verification_pairs(labels, max_pairs)
    if len(pairs) == 0:
        raise ValueError("pair verification needs at least 2 identities, one of them with 2 images")

    def evaluate(model: nn.Module) -> dict[str, float]:
        e = embed_crops(model, crops, preprocess, device)
        dist = np.linalg.norm(e[pairs[:, 0]] - e[pairs[:, 1]], axis=1)
        acc = ev.kfold_accuracy(dist, same, np.zeros(len(dist), int))
        return {
            "val_accuracy": acc["accuracy_mean"],
            "val_auc": ev.roc_curve(dist, same)[2],
            "val_threshold": acc["threshold_all"],
            "val_genuine_dist": float(dist[same].mean()),
            "val_impostor_dist": float(dist[~same].mean()),
        }

    return evaluate
