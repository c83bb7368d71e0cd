"""manage.py create_token USER [--hours N]: print a new API token for USER (shown once; stored hashed)."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from knox.models import AuthToken


class Command(BaseCommand):
    help = "Create an API token for a user and print it (only its hash is kept). Send it as 'Authorization: Token <t>'."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--hours", type=float, help="Lifetime (default: FACEACCESS_TOKEN_TTL_HOURS).")

    def handle(self, *args, username: str, hours: float | None, **opts) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        expiry = dt.timedelta(hours=hours) if hours else None
        _, token = AuthToken.objects.create(user, expiry=expiry) if expiry else AuthToken.objects.create(user)
        self.stdout.write(token)
