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


def positive(raw: str | None, default: int) -> int:
    return int(raw) if raw and raw.isdigit() and int(raw) > 0 else default


def threshold_number(raw: str | None, default: float) -> float:
    try:
        value = float(raw) if raw not in (None, "") else default
    except ValueError:
        raise ApiError("invalid_number", f"expected a number, got {raw!r}") from None
    if not 0.0 < value <= 2.0:
        raise ApiError("invalid_number", "must be in (0, 2]")
    return value
