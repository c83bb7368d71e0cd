"""FaceAccess vision engine: RetinaFace -> alignment -> 128-d embedders.

Plain PyTorch / NumPy / OpenCV; no Django. The one entry point most callers
need::

    from recognition.engine import Pipeline, load_image
    pipe = Pipeline.load()                      # default embedder, CUDA if present
    image = load_image("door.jpg")
    faces = pipe.faces([image])[0]
    if liveness_installed():                    # optional weights (fetch-weights --liveness)
        pipe.score_liveness(image, faces[:1])   # fills faces[0].liveness, 0..1, high = real face
"""

from .images import ImageError, load_image
from .registry import WeightsError, liveness_installed
from .types import Detections, Face, FaceQuality

__all__ = ["Detections", "Face", "FaceQuality", "ImageError", "LivenessModel", "Pipeline", "WeightsError",
           "liveness_installed", "load_image"]


def __getattr__(name: str):
    # Import the pipeline (and torch models) only when asked for.
    if name == "Pipeline":
        from .pipeline import Pipeline

        return Pipeline
    if name == "LivenessModel":
        from .liveness import LivenessModel

        return LivenessModel
    raise AttributeError(name)
