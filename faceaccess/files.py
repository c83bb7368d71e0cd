"""Stored files follow their rows: written before the row commits, removed if it does not."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.db import transaction
from django.db.models.fields.files import FieldFile

T = TypeVar("T")


def delete_file_on_commit(field_file: FieldFile | None) -> None:
    """Remove a stored file once the deleting transaction commits (a rollback keeps it)."""
    if not field_file or not field_file.name:
        return
    storage, name = field_file.storage, field_file.name
    transaction.on_commit(lambda: storage.delete(name))


def save_with_row(storage: Storage, name: str, data: bytes, save_row: Callable[[str], T]) -> T:
    """Write ``data`` as ``name``, then run ``save_row(stored_name)`` in a transaction; if the row does not
    commit, the file is removed again, so a failed request never leaves an orphan file behind."""
    stored = storage.save(name, ContentFile(data))
    try:
        with transaction.atomic():
            return save_row(stored)
    except BaseException:
        storage.delete(stored)
        raise
