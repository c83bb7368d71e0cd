"""Shared API view settings, set per view so they do not depend on project-wide REST_FRAMEWORK settings."""

from __future__ import annotations

from knox.auth import TokenAuthentication
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import PageNumberPagination

from faceaccess import roles

from .errors import JsonErrorsMixin


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class RoleAPIMixin(JsonErrorsMixin):
    """People with a role, by token (``Authorization: Token <key>``) or by session. Every role reads; who may
    change things is the view's ``write_roles`` (default: admins), per action with ``action_roles``."""

    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [roles.HasRole]
    pagination_class = Pages
    read_roles = roles.EVERYONE
    write_roles = roles.ADMINS

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        record_actor(request.user)


def record_actor(user) -> None:
    """Tell the audit trail who acts in a token-authenticated API call: auditlog's middleware runs before
    DRF authenticates, so it only knows session users. (It keeps the request's context in a ContextVar.)"""
    from auditlog.context import auditlog_value

    try:
        context = auditlog_value.get()
    except LookupError:
        return
    if context.get("actor") is None and getattr(user, "is_authenticated", False) and getattr(user, "pk", None):
        context["actor"] = user
