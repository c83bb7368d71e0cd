"""Validity windows (``valid_from`` .. ``valid_until``, either end open) as a database constraint."""

from __future__ import annotations

from django.db import models


def ordered_validity(name: str) -> models.CheckConstraint:
    """valid_from <= valid_until whenever both are set."""
    return models.CheckConstraint(
        condition=models.Q(valid_from__isnull=True)
        | models.Q(valid_until__isnull=True)
        | models.Q(valid_from__lte=models.F("valid_until")),
        name=name,
    )
