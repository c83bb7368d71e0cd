"""What every console view shares: the role check."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import render

from access.api.base import whole_number
from faceaccess import roles


def role_required(allowed: Iterable[str] = roles.EVERYONE) -> Callable:
    """Anonymous: to the login page. Logged in without one of ``allowed``: a 403 page that says why."""
    allowed = frozenset(allowed)

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if roles.role_of(request.user) not in allowed:
                return render(request, "403.html", status=403)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


MAX_PAGE = 10 ** 9


def page(request, per_page: int = 50) -> tuple[int, int]:
    """(offset, number) of ``?page=`` (1-based), forgiving of junk; a page past ``MAX_PAGE`` is a 404 (its offset
    would overflow the database's bigint, a 500)."""
    raw = request.GET.get("page", "1")
    number = whole_number(raw) or 1
    if number > MAX_PAGE:
        raise Http404("no such page")
    return (number - 1) * per_page, number
