from pathlib import Path

import pytest

from recognition.engine import registry

SHARED = Path(__file__).resolve().parents[3] / "shared"
LFW = SHARED / "datasets" / "lfw"


def have_weights(*specs: registry.ModelSpec) -> bool:
    return all(registry.converted_path(s).is_file() for s in specs)


needs_weights = pytest.mark.skipif(
    not have_weights(registry.DETECTOR, registry.SFACE, registry.FACENET),
    reason="weights cache empty: run `python -m recognition.engine fetch-weights` (make test does)",
)


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
