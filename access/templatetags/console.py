"""Small formatting filters of the console."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """0.0123 -> '1.2%'; None -> '—'."""
    if value is None:
        return "—"
    return f"{100.0 * float(value):.{int(digits)}f}%"
