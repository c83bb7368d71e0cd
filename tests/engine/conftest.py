import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from recognition.engine import registry

SHARED = Path(__file__).resolve().parents[3] / "shared"
LFW = SHARED / "datasets" / "lfw"


# ../shared is beside every checkout that runs the whole suite (CI included); a checkout without it skips what
# needs LFW with this reason instead of failing on a missing file.
needs_lfw = pytest.mark.skipif(not (LFW / "images").is_dir(), reason=f"LFW not found at {LFW} (../shared)")


def have_weights(*specs: registry.ModelSpec) -> bool:
    return all(registry.converted_path(s).is_file() for s in specs)


needs_weights = pytest.mark.skipif(
    not have_weights(registry.DETECTOR, registry.SFACE, registry.FACENET),
    reason="weights cache empty: run `python -m recognition.engine fetch-weights` (make test does)",
)


def find_raw(name: str) -> Path | None:
    """A raw model download: $FACEACCESS_RAW_DIR, $FACEACCESS_MODEL_DIR, then the registry cache
    ($FACEACCESS_CACHE_DIR or ~/.cache/faceaccess/models, raw files under ``raw/``)."""
    dirs = [os.environ.get("FACEACCESS_RAW_DIR"), os.environ.get("FACEACCESS_MODEL_DIR"), str(registry.cache_dir())]
    for d in filter(None, dirs):
        root = Path(d)
        if (root / name).is_file():
            return root / name
        hits = sorted(root.glob(f"**/{name}")) if root.is_dir() else []
        if hits:
            return hits[0]
    return None


def raw_or_skip(name: str) -> Path:
    path = find_raw(name)
    if path is None:
        pytest.skip(f"{name} not found in $FACEACCESS_RAW_DIR / $FACEACCESS_MODEL_DIR / the weights cache "
                    "(run `python -m recognition.engine fetch-weights` first)")
    return path


def lfw_image(name: str, n: int) -> Path:
    return LFW / "images" / name / f"{name}_{n:04d}.jpg"


@pytest.fixture(scope="session")
def sface_pipeline():
    from recognition.engine.pipeline import Pipeline

    return Pipeline.load(embedder="sface", device="cpu")


@pytest.fixture(scope="session")
def facenet_pipeline():
    from recognition.engine.pipeline import Pipeline

    return Pipeline.load(embedder="facenet-irv1", device="cpu")


@pytest.fixture(autouse=True)
def restore_torch_threads():
    # the trainers set the thread count globally; later tests must not inherit it
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def write_identities(root: Path, ids: dict[str, list[np.ndarray]]) -> Path:
    """Save synthetic identities as ROOT/<name>/<name>_NNNN.png (the training data layout)."""
    for name, imgs in ids.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for j, im in enumerate(imgs):
            cv2.imwrite(str(root / name / f"{name}_{j:04d}.png"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    return root
