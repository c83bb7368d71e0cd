"""Template context of every console page: the user's role and the menu it may use."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from faceaccess import roles

# (url name, label, roles that see it)
MENU = [
    ("console:dashboard", "Dashboard", roles.EVERYONE),
    ("console:people", "People", roles.EVERYONE),
    ("console:events", "Access log", roles.EVERYONE),
    ("console:strangers", "Strangers", roles.EVERYONE),
    ("console:sites", "Sites & cameras", roles.EVERYONE),
    ("console:rules", "Access rules", roles.EVERYONE),
    ("console:models", "Models", roles.OVERSEERS),
    ("console:activity", "Activity", roles.OVERSEERS),
    ("console:lockouts", "Lockouts", roles.ADMINS),
]


def current_section(request, names: list[str]) -> str | None:
    """The menu entry the page belongs to (for aria-current and the highlight): the one whose URL is the longest
    prefix of the page's path, so that a person's page marks People."""
    path, best, length = getattr(request, "path", "/"), None, 0
    for name in names:
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        if (path == url or (url != "/" and path.startswith(url))) and len(url) > length:
            best, length = name, len(url)
    return best


def console(request) -> dict:
    role = roles.role_of(getattr(request, "user", None))
    menu = [(name, label) for name, label, allowed in MENU if role in allowed]
    return {
        "role": role,
        "menu": menu,
        "menu_current": current_section(request, [name for name, _ in menu]),
        "can_edit_people": role in roles.EDITORS,
        "can_review": role in roles.EDITORS,
        "is_admin": role == roles.ADMIN,
    }
