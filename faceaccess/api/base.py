"""Shared API view settings, set per view so they do not depend on project-wide REST_FRAMEWORK settings."""

from __future__ import annotations

from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAdminUser

from .errors import JsonErrorsMixin


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class AdminAPIMixin(JsonErrorsMixin):
    """Staff only, by token (``Authorization: Token <key>``) or by session."""

    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAdminUser]
    pagination_class = Pages
