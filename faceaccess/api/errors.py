"""Every API error is JSON ``{"error": code, "detail": message}`` (plus ``fields`` for form errors)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApiError(exceptions.APIException):
    """An error with a stable machine code and a message a person can act on."""

    def __init__(self, code: str, detail: str, status_code: int = status.HTTP_400_BAD_REQUEST):
        super().__init__(detail=detail, code=code)
        self.status_code = status_code


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            msg = _first_message(value)
            return msg if key == "non_field_errors" else f"{key}: {msg}"
        return "invalid input"
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "invalid input"
    return str(detail)


def error_body(data: Any, status_code: int, code: str) -> dict:
    """This API's shape for a DRF-style error body made elsewhere: ``{"detail": ...}`` keeps its detail's
    code (``code`` when it has none); field errors become ``invalid`` with the first message and ``fields``."""
    if isinstance(data, dict) and set(data) == {"detail"}:
        return {"error": getattr(data["detail"], "code", None) or code, "detail": str(data["detail"])}
    return {"error": "invalid" if status_code == 400 else code, "detail": _first_message(data), "fields": data}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(exc.detail, status.HTTP_400_BAD_REQUEST, "invalid")
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = {"error": code, "detail": str(exc.detail)}
    return response


class JsonErrorsMixin:
    """Use this API's error shape whatever the project-wide REST_FRAMEWORK settings say."""

    def get_exception_handler(self):  # noqa: ANN201 (DRF hook)
        return exception_handler
