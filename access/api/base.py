"""What access's plain API views share: role checks with token or session, and query-parameter parsing."""

from __future__ import annotations

from knox.auth import TokenAuthentication
from rest_framework.authentication import SessionAuthentication
from rest_framework.views import APIView

from faceaccess import roles
from faceaccess.api.errors import ApiError, JsonErrorsMixin


class RoleAPI(JsonErrorsMixin, APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [roles.HasRole]
    write_roles = roles.EDITORS


def positive(raw: str | None, default: int, most: int | None = None) -> int:
    """``raw`` as a positive whole number (``default`` for junk), at most ``most`` when given."""
    value = whole_number(raw)
    if value is None or value <= 0:
        value = default
    return min(value, most) if most is not None else value


def whole_number(raw: str | None, huge: int = 10 ** 18) -> int | None:
    """ASCII digits as an int (``huge`` past 18 digits: int() of a 5,000-digit string raises), else None
    (``"²".isdigit()`` is True, yet int() refuses it)."""
    if not (raw and raw.isascii() and raw.isdigit()):
        return None
    raw = raw.lstrip("0") or "0"
    return int(raw) if len(raw) <= 18 else huge


def threshold_number(raw: str | None, default: float) -> float:
    try:
        value = float(raw) if raw not in (None, "") else default
    except ValueError:
        raise ApiError("invalid_number", f"expected a number, got {raw!r}") from None
    if not 0.0 < value <= 2.0:
        raise ApiError("invalid_number", "must be in (0, 2]")
    return value
