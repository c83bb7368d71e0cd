"""Who may do what: three roles, stored as Django groups, enforced on every page and API endpoint.

- admin: everything (a superuser is always an admin);
- operator: enrolls people and reviews the access log;
- auditor: reads everything an admin can read, changes nothing (and never sees a camera key).

A logged-in account without a role (or a bare ``is_staff`` flag) gets nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from rest_framework.permissions import SAFE_METHODS, BasePermission

ADMIN, OPERATOR, AUDITOR = "admin", "operator", "auditor"
ROLES = (ADMIN, OPERATOR, AUDITOR)
EVERYONE = frozenset(ROLES)
EDITORS = frozenset({ADMIN, OPERATOR})
ADMINS = frozenset({ADMIN})
OVERSEERS = frozenset({ADMIN, AUDITOR})  # read thresholds, models and the audit trail; only admins change them


def role_of(user: AbstractBaseUser | AnonymousUser | None) -> str | None:
    """The user's role, or None (anonymous, inactive or no role)."""
    if user is None or not user.is_authenticated or not getattr(user, "is_active", False):
        return None
    if getattr(user, "is_superuser", False):
        return ADMIN
    names = getattr(user, "_faceaccess_groups", None)
    if names is None:  # cached on the user object for the request
        names = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._faceaccess_groups = names
    return next((role for role in ROLES if role in names), None)


def has_role(user, roles: Iterable[str]) -> bool:
    return role_of(user) in set(roles)


def set_role(user, role: str | None) -> None:
    """Give ``user`` exactly this role (None: no role)."""
    if role is not None and role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    if role is not None:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    user.__dict__.pop("_faceaccess_groups", None)


class HasRole(BasePermission):
    """API views say who may read (``read_roles``, default: every role) and who may change
    (``write_roles``, default: admins; per action with ``action_roles``)."""

    message = "your role does not allow this"

    def has_permission(self, request, view) -> bool:
        role = role_of(request.user)
        if role is None:
            return False
        action_roles = getattr(view, "action_roles", {}).get(getattr(view, "action", None))
        if action_roles is not None:
            return role in action_roles
        if request.method in SAFE_METHODS:
            return role in getattr(view, "read_roles", EVERYONE)
        return role in getattr(view, "write_roles", ADMINS)
