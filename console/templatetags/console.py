"""Small formatting filters of the console."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

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


@register.simple_tag
def live_badge(score: float | None, threshold: float | None, code: str = "") -> str:
    """The liveness badge of an event or a face: refused as an attack, suspected (under the threshold, e.g. in
    monitor), live, or nothing when it was not scored."""
    def num(value: float | None) -> str:
        return f"{float(value or 0.0):.3f}"  # formatted first: format_html escapes its arguments

    if code == "presentation_attack":
        return format_html('<span class="badge attack" title="live score {} under {}">print or screen refused</span>',
                           num(score), num(threshold))
    from access.decisions import suspected

    if score is None or threshold is None:
        return ""
    if suspected(score, threshold):
        return format_html('<span class="badge suspected" title="under the liveness threshold {}">suspected print · '
                           "live {}</span>", num(threshold), num(score))
    return format_html('<span class="badge live" title="liveness threshold {}">live {}</span>', num(threshold),
                       num(score))


@register.simple_tag(takes_context=True)
def attempts_left(context) -> str:
    """After a wrong password on the login page: how many more this account may try from this address before
    django-axes locks it out (its own count, so the words follow whatever lockout rules are configured)."""
    from axes.handlers.proxy import AxesProxyHandler
    from django.conf import settings

    request, form = context.get("request"), context.get("form")
    limit = getattr(settings, "AXES_FAILURE_LIMIT", None)
    username = form.data.get("username", "") if form is not None and getattr(form, "is_bound", False) else ""
    if request is None or not username or not isinstance(limit, int):
        return ""
    left = max(0, limit - AxesProxyHandler.get_failures(request, {"username": username}))
    if left == 0:
        return "The next wrong password locks this account out from this address for a while."
    return (f"{left} more wrong password{'s' if left != 1 else ''} for this account from this address, then it is "
            "locked out for a while (an admin can lift it).")
