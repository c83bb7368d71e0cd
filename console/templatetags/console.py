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


@register.filter
def face_viewbox(face, margin: float = 0.25) -> str:
    """An SVG viewBox around a face's box (with a margin), to show the face cropped out of its snapshot."""
    x1, y1, x2, y2 = (float(v) for v in face.box)
    w, h = x2 - x1, y2 - y1
    side = max(w, h) * (1 + 2 * float(margin))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return f"{cx - side / 2:.1f} {cy - side / 2:.1f} {side:.1f} {side:.1f}"


@register.filter
def names(text: str) -> str:
    """A stored reason with its person tokens rendered (see access.naming)."""
    from access.naming import render

    return render(text)


@register.filter
def word(value: str | None) -> str:
    """A stored word for people to read: 'no_face' -> 'no face' (the stored value stays the CSS class)."""
    return str(value or "").replace("_", " ")
