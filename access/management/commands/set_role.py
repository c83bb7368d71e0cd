"""manage.py set_role USERNAME admin|operator|auditor|none [--create]: give a console/API user a role."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from faceaccess import roles


class Command(BaseCommand):
    help = "Give a user exactly one role (admin: everything; operator: enroll and review; auditor: read only)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", choices=[*roles.ROLES, "none"])
        parser.add_argument("--create", action="store_true",
                            help="Create the user if missing (asks for no password: set one with changepassword).")

    def handle(self, *args, username: str, role: str, create: bool, **opts) -> None:
        users = get_user_model()
        user = users.objects.filter(username=username).first()
        if user is None:
            if not create:
                raise CommandError(f"no user {username!r} (add --create to make one)")
            user = users.objects.create_user(username)
        roles.set_role(user, None if role == "none" else role)
        note = " (a superuser is always an admin)" if user.is_superuser and role != "admin" else ""
        self.stdout.write(f"{username}: {role}{note}")
