"""Small query helpers shared by the apps."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


def one_or_none(queryset: QuerySet[M]) -> M | None:
    """The row of a lookup that matches at most one row (a unique key, a primary key), or None.

    Like ``first()`` without the ORDER BY it adds to an unordered queryset: compiling that ordering cost Django
    about 1 ms per call, several times in every door's request and task.
    """
    return next(iter(queryset.order_by()[:1]), None)
