"""FaceAccess vision engine: RetinaFace -> alignment -> 128-d embedders.

Plain PyTorch / NumPy / OpenCV; no Django. The one entry point most callers
need::

    from recognition.engine import Pipeline, load_image
    pipe = Pipeline.load()                      # default embedder, CUDA if present
    faces = pipe.faces([load_image("door.jpg")])[0]
"""

from .images import ImageError, load_image
from .registry import WeightsError
from .types import Detections, Face, FaceQuality

__all__ = ["Detections", "Face", "FaceQuality", "ImageError", "Pipeline", "WeightsError", "load_image"]


def __getattr__(name: str):
    # Import the pipeline (and torch models) only when asked for.
    if name == "Pipeline":
        from .pipeline import Pipeline

        return Pipeline
    raise AttributeError(name)
