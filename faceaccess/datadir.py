"""Where FaceAccess keeps its state (database files, Redis files, media, generated secrets)."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from .env import env_str

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """$FACEACCESS_DATA_DIR, or <repo>/var; created on first use."""
    path = Path(env_str("FACEACCESS_DATA_DIR") or REPO_ROOT / "var").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def stored_secret(name: str, directory: Path | None = None, nbytes: int = 32) -> str:
    """A random secret generated once and kept (mode 0600) under the data dir, so restarts reuse it."""
    folder = (directory or data_dir()) / "secrets"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(nbytes)
    # Written aside then hard-linked into place: the link fails if another process won the race,
    # and nobody ever reads a half-written file.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
        os.link(tmp, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        os.unlink(tmp)
    return value
