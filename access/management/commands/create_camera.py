"""manage.py create_camera SITE NAME: prints the camera's API key once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from access.models import Camera, Site
from enrollment.models import Person


class Command(BaseCommand):
    help = "Create a camera on a site and print its API key (shown only this once; only its hash is stored)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("site", help="Site name or id.")
        parser.add_argument("name")
        parser.add_argument("--allow", nargs="*", type=int, default=[], help="Person ids of the allow-list.")
        parser.add_argument("--key-only", action="store_true", help="Print only the key (for scripts).")

    def handle(self, *args, site: str, name: str, allow: list[int], key_only: bool, **opts) -> None:
        site_obj = Site.objects.filter(pk=int(site)).first() if site.isdigit() else None
        site_obj = site_obj or Site.objects.filter(name=site).first()
        if site_obj is None:
            raise CommandError(f"no site {site!r}")
        if Camera.objects.filter(site=site_obj, name=name).exists():
            raise CommandError(f"site {site_obj.name!r} already has a camera {name!r}")
        people = list(Person.objects.filter(pk__in=allow))
        missing = set(allow) - {p.pk for p in people}
        if missing:
            raise CommandError(f"no person with id {', '.join(map(str, sorted(missing)))}")
        with transaction.atomic():
            camera = Camera(site=site_obj, name=name)
            key = camera.set_new_key()
            camera.save()
            camera.allowed_people.set(people)
        if key_only:
            self.stdout.write(key)
            return
        self.stdout.write(f"camera {camera.pk} {name!r} created on site {site_obj.name!r}")
        self.stdout.write(f"API key (shown once, store it in the camera now): {key}")
        self.stdout.write("The camera sends it as the header 'Authorization: Api-Key <key>'.")
