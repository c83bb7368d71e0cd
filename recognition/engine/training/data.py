"""Face-recognition training data: identity folders, P x K batches, light augmentation.

Layout ``ROOT/<identity>/<image>``; the crops are expected already aligned (the engine's
detector + 5-point alignment, see :func:`align_folder` to make them from raw photos).
Images are RGB uint8 throughout; pixel normalisation is the embedder's own ``preprocess``
so training and inference see identical inputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
Aligner = Callable[[np.ndarray], "np.ndarray | None"]


def read_rgb(path: Path) -> np.ndarray:
    """RGB uint8 image from disk (OpenCV decode: fast, no EXIF games for crops)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot decode {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def people_in_pairs(pairs_file: Path) -> set[str]:
    """Every name mentioned in an LFW pairs file (``name n1 n2`` / ``name1 n1 name2 n2`` lines)."""
    names: set[str] = set()
    for line in Path(pairs_file).read_text().splitlines()[1:]:
        names.update(tok for tok in line.split() if not re.fullmatch(r"\d+", tok))
    return names


@dataclass
class FaceFolder(Dataset):
    """Images of ``ROOT/<identity>/<image>``; item = (RGB uint8 crop of ``size``, label).

    ``identities`` are the sorted folder names (label = index); folders with fewer than
    ``min_images`` images, or named in ``exclude``, are left out. Crops that are not
    ``size`` x ``size`` are letterboxed (the seed's resize: grey bars, no distortion).
    """

    root: Path
    size: int = 160
    min_images: int = 1
    exclude: frozenset[str] = frozenset()
    augment: Callable[[np.ndarray], np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: no such directory")
        self.identities: list[str] = []
        self.paths: list[Path] = []
        self.labels: list[int] = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and p.name not in self.exclude):
            files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if len(files) < self.min_images:
                continue
            label = len(self.identities)
            self.identities.append(folder.name)
            self.paths += files
            self.labels += [label] * len(files)
        if not self.paths:
            raise ValueError(f"{self.root}: no images in ROOT/<identity>/<image> layout")

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_classes(self) -> int:
        return len(self.identities)

    def load(self, index: int) -> np.ndarray:
        from ..align import letterbox

        img = read_rgb(self.paths[index])
        if img.shape[:2] != (self.size, self.size):
            img = letterbox(img, self.size)
        return img

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        img = self.load(index)
        if self.augment is not None:
            img = self.augment(img)
        return np.ascontiguousarray(img), self.labels[index]


class PKSampler(Sampler[list[int]]):
    """Batches of P identities x K images each (Hermans et al.), as lists of indices.

    Identities with at least 2 images are drawn (a positive must exist); one with fewer than
    K images repeats some. ``batches`` per epoch defaults to ``len(dataset) // (P * K)``.
    The draw depends only on (seed, epoch): call :meth:`set_epoch` so a resumed run
    replays the same batches.
    """

    def __init__(self, labels: Sequence[int], p: int, k: int, batches: int | None = None, seed: int = 0):
        by_label: dict[int, list[int]] = {}
        for i, y in enumerate(labels):
            by_label.setdefault(int(y), []).append(i)
        self.groups = [idx for _, idx in sorted(by_label.items()) if len(idx) >= 2]
        if len(self.groups) < 2:
            raise ValueError("PK sampling needs at least 2 identities with 2 or more images")
        self.p = min(p, len(self.groups))
        self.k = k
        self.batches = batches or max(1, len(labels) // (self.p * k))
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.groups), generator=g).tolist()
        pos = 0
        for _ in range(self.batches):
            if pos + self.p > len(order):  # walk all identities before repeating any
                order = torch.randperm(len(self.groups), generator=g).tolist()
                pos = 0
            batch: list[int] = []
            for gi in order[pos : pos + self.p]:
                idx = self.groups[gi]
                if len(idx) >= self.k:
                    pick = torch.randperm(len(idx), generator=g)[: self.k].tolist()
                else:
                    pick = torch.randint(len(idx), (self.k,), generator=g).tolist()
                batch += [idx[j] for j in pick]
            pos += self.p
            yield batch


class FaceAugment:
    """Flip, small scale/shift jitter and colour jitter for aligned face crops (numpy/cv2).

    Random numbers come from torch's generator, which DataLoader seeds per worker.
    """

    def __init__(
        self,
        flip: float = 0.5,
        scale: float = 0.08,
        shift: float = 0.04,
        brightness: float = 0.2,
        contrast: float = 0.2,
        saturation: float = 0.2,
    ) -> None:
        self.flip, self.scale, self.shift = flip, scale, shift
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation

    def __call__(self, img: np.ndarray) -> np.ndarray:
        u = torch.rand(8).tolist()
        h, w = img.shape[:2]
        if u[0] < self.flip:
            img = img[:, ::-1]
        if self.scale or self.shift:
            s = 1.0 + self.scale * (2 * u[1] - 1)
            tx, ty = self.shift * w * (2 * u[2] - 1), self.shift * h * (2 * u[3] - 1)
            m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, s)
            m[:, 2] += (tx, ty)
            img = cv2.warpAffine(
                np.ascontiguousarray(img), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
            )
        x = img.astype(np.float32)
        x *= 1.0 + self.brightness * (2 * u[4] - 1)
        mean = x.mean()
        x = (x - mean) * (1.0 + self.contrast * (2 * u[5] - 1)) + mean
        grey = x.mean(axis=2, keepdims=True)
        x = (x - grey) * (1.0 + self.saturation * (2 * u[6] - 1)) + grey
        return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def collate_faces(batch: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, torch.Tensor]:
    """Stack to (N, S, S, 3) uint8 (the embedder's ``preprocess`` input) and a label tensor."""
    return np.stack([b[0] for b in batch]), torch.tensor([b[1] for b in batch], dtype=torch.long)


def align_folder(
    src: Path, dst: Path, aligner: Aligner, exclude: frozenset[str] = frozenset(), progress: bool = True
) -> dict[str, int]:
    """Write ``aligner(image)`` of every ``src/<identity>/<image>`` to the same place under ``dst``.

    Images already present in ``dst`` are skipped (re-runs are cheap); images where the aligner
    finds no face (returns None) are counted and left out. Returns counts.
    """
    from tqdm import tqdm

    from ..images import ImageError, load_image

    src, dst = Path(src), Path(dst)
    todo = [
        f
        for d in sorted(src.iterdir())
        if d.is_dir() and d.name not in exclude
        for f in sorted(d.iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]
    counts = {"aligned": 0, "skipped": 0, "no_face": 0, "unreadable": 0}
    for f in tqdm(todo, desc="aligning", unit="img", disable=not progress):
        out = dst / f.parent.name / (f.stem + ".png")
        if out.is_file():
            counts["skipped"] += 1
            continue
        try:
            img = load_image(f)
        except ImageError:
            counts["unreadable"] += 1
            continue
        crop = aligner(img)
        if crop is None:
            counts["no_face"] += 1
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))  # PNG: no second lossy pass
        counts["aligned"] += 1
    return counts


def detector_aligner(arch: str, device: str | torch.device = "cpu") -> Aligner:
    """The engine's own detect -> 5-point align for ``arch`` (same template as the Pipeline),
    keeping the face nearest the image centre, as the LFW evaluation does."""
    from .. import registry
    from ..align import similarity_align, template
    from ..detector import RetinaFaceDetector
    from ..embedders import EMBEDDER_CLASSES

    spec = next(s for s in registry.MODELS.values() if s.kind == "embedder" and s.arch == arch)
    size = EMBEDDER_CLASSES[arch].input_size
    dst = template(size, spec.align_scale, spec.align_shift_y)
    det = RetinaFaceDetector.from_state_dict(registry.load_state_dict(registry.DETECTOR), device=device)

    def align(img: np.ndarray) -> np.ndarray | None:
        found = det.detect([img])[0]
        if len(found) == 0:
            return None
        centres = (found.boxes[:, :2] + found.boxes[:, 2:]) / 2 - [img.shape[1] / 2, img.shape[0] / 2]
        k = int(np.argmin((centres**2).sum(1)))
        return similarity_align(img, found.landmarks[k], size, dst)[0]

    return align
