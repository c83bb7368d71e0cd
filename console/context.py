"""Template context of every console page: the user's role and the menu it may use."""

from __future__ import annotations

from faceaccess import roles

# (url name, label, roles that see it)
MENU = [
    ("console:dashboard", "Dashboard", roles.EVERYONE),
    ("console:people", "People", roles.EVERYONE),
    ("console:events", "Access log", roles.EVERYONE),
    ("console:strangers", "Strangers", roles.EVERYONE),
    ("console:sites", "Sites & cameras", roles.EVERYONE),
    ("console:models", "Models", roles.OVERSEERS),
    ("console:activity", "Activity", roles.OVERSEERS),
    ("console:lockouts", "Lockouts", roles.ADMINS),
]


def console(request) -> dict:
    role = roles.role_of(getattr(request, "user", None))
    return {
        "role": role,
        "menu": [(name, label) for name, label, allowed in MENU if role in allowed],
        "can_edit_people": role in roles.EDITORS,
        "can_review": role in roles.EDITORS,
        "is_admin": role == roles.ADMIN,
    }
