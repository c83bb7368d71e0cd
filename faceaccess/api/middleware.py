"""Under ``/api/`` every error answers JSON ``{"error": code, "detail": message}``, whoever produced it.

The API views format their own errors (:mod:`.errors`); this middleware catches the rest:

- exceptions no view handled: Django's own 400s while reading a request (too many fields, too many files,
  too much form data), and anything else, which becomes a 500 that carries an ``error_id``; the traceback
  goes to the server log under that id and never into the answer;
- error pages made outside the API's views (an unknown URL, a 500 from another middleware), and error bodies
  of views that do not use the API's error shape (DRF's token endpoint answers ``{"non_field_errors": ...}``).

Pages outside ``/api/`` (admin, console) keep their HTML errors.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.core import exceptions as django_exceptions
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from .errors import error_body

log = logging.getLogger(__name__)

API_PREFIX = "/api/"

# Django's refusals while it parses a request body: exception, status, code, the setting that limits it.
_REQUEST_REFUSALS: list[tuple[type[Exception], int, str, str, str]] = [
    (django_exceptions.TooManyFilesSent, 400, "too_many_files", "DATA_UPLOAD_MAX_NUMBER_FILES",
     "too many files in one request (at most {limit:,})"),
    (django_exceptions.TooManyFieldsSent, 400, "too_many_fields", "DATA_UPLOAD_MAX_NUMBER_FIELDS",
     "too many form fields in one request (at most {limit:,})"),
    (django_exceptions.RequestDataTooBig, 413, "request_too_large", "DATA_UPLOAD_MAX_MEMORY_SIZE",
     "the request's form data other than files is over {limit:,} bytes"),
]


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def status_code_name(status: int) -> str:
    """``not_found`` for 404, ``server_error`` for 500, ``bad_request`` for 400 ..."""
    if status == 500:
        return "server_error"
    return status_phrase(status).lower().replace(" ", "_").replace("-", "_")


def server_error(request: HttpRequest, exc: BaseException | None = None) -> JsonResponse:
    """A 500 whose id finds the traceback in the server log; nothing of the exception goes to the client."""
    error_id = uuid.uuid4().hex[:16]
    if exc is not None:
        log.error("API error %s: %s %s", error_id, request.method, request.path,
                  exc_info=(type(exc), exc, exc.__traceback__))
    else:  # Django already logged the exception ("Internal Server Error: <path>") just before
        log.error("API error %s: %s %s answered 500 (see the error logged just before)", error_id,
                  request.method, request.path)
    detail = f"internal server error; quote error id {error_id} when reporting it"
    return JsonResponse({"error": "server_error", "detail": detail, "error_id": error_id}, status=500)


def _refusal(exc: Exception) -> JsonResponse | None:
    for kind, status, code, setting, message in _REQUEST_REFUSALS:
        if isinstance(exc, kind):
            # What Django's own handler does with a SuspiciousOperation: log it to django.security.*
            logging.getLogger(f"django.security.{type(exc).__name__}").error(str(exc))
            detail = message.format(limit=getattr(settings, setting))
            return JsonResponse({"error": code, "detail": detail}, status=status)
    return None


def _json_of(response: HttpResponse) -> object:
    data = getattr(response, "data", None)  # a DRF Response keeps what it rendered
    if data is not None:
        return data
    if response.get("Content-Type", "").startswith("application/json"):
        try:
            return json.loads(response.content)
        except ValueError:
            return None
    return None


def _has_our_shape(data: object) -> bool:
    return isinstance(data, dict) and isinstance(data.get("error"), str) and isinstance(data.get("detail"), str)


class ApiErrorsMiddleware:
    """JSON ``{"error", "detail"}`` for every error under ``/api/``; see the module's docstring."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not is_api(request) or response.status_code < 400 or response.streaming:
            return response
        data = _json_of(response)
        is_json = response.get("Content-Type", "").startswith("application/json")
        if _has_our_shape(data) and is_json:
            return response
        if response.status_code >= 500 and not _has_our_shape(data):
            return self._replace(response, server_error(request))
        code = status_code_name(response.status_code)
        if _has_our_shape(data):  # DRF's browsable API rendered it as HTML for a browser
            body = data
        elif data:
            body = error_body(data, response.status_code, code)
        else:
            body = {"error": code, "detail": status_phrase(response.status_code)}
        return self._replace(response, JsonResponse(body, status=response.status_code))

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not is_api(request):
            return None
        refusal = _refusal(exc)
        if refusal is not None:
            return refusal
        if isinstance(exc, Http404):
            return JsonResponse({"error": "not_found", "detail": "Not found."}, status=404)
        if isinstance(exc, django_exceptions.PermissionDenied):
            return JsonResponse({"error": "permission_denied", "detail": "permission denied"}, status=403)
        if isinstance(exc, django_exceptions.SuspiciousOperation):
            logging.getLogger(f"django.security.{type(exc).__name__}").error(str(exc))
            return JsonResponse({"error": "bad_request", "detail": "bad request"}, status=400)
        if isinstance(exc, django_exceptions.BadRequest):
            return JsonResponse({"error": "bad_request", "detail": str(exc) or "bad request"}, status=400)
        return server_error(request, exc)

    @staticmethod
    def _replace(old: HttpResponse, new: JsonResponse) -> JsonResponse:
        """``new``, keeping the headers that matter to a client (WWW-Authenticate, Allow, Retry-After ...)."""
        for name, value in old.items():
            if name.lower() not in ("content-type", "content-length"):
                new[name] = value
        new.cookies = old.cookies
        return new
