"""Bulk import: every photo of a folder becomes a face image of the person its name says."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from faceaccess.uploads import UploadError, validate_image_bytes

from .faces import create_face_image
from .models import FaceImage, Person

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def person_name(path: Path, name_from: str) -> str:
    """``alice_01.jpg`` -> ``alice`` (the seed's convention); ``name_from="dir"``: the parent folder (LFW)."""
    if name_from == "dir":
        return path.parent.name.replace("_", " ")
    return path.stem.split("_", 1)[0]


def photo_files(directory: Path, name_from: str = "prefix", recursive: bool = False) -> list[Path]:
    """The photos to import, sorted; with ``prefix`` naming, only ``<name>_<anything>`` files."""
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in directory.glob(pattern) if p.is_file() and p.suffix.lower() in SUFFIXES)
    return [p for p in files if name_from == "dir" or "_" in p.stem]


@dataclass(frozen=True)
class Imported:
    path: Path
    person: Person | None = None
    face: FaceImage | None = None
    skipped: str = ""  # why the file was not stored


def import_photos(files: list[Path], name_from: str = "prefix", queue: bool = True) -> Iterator[Imported]:
    """Store each photo for the person its name gives (created on first sight); a refused file is skipped."""
    for path in files:
        try:
            upload = validate_image_bytes(path.read_bytes(), path.name)
        except UploadError as exc:
            yield Imported(path, skipped=exc.detail)
            continue
        name = person_name(path, name_from)
        person = Person.objects.filter(name=name).order_by("pk").first() or Person.objects.create(name=name)
        yield Imported(path, person, create_face_image(person, upload, queue=queue))
