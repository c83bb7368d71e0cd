"""manage.py create_site NAME [--timezone Europe/Paris] [--threshold 0.9] ..."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from access.models import Site


class Command(BaseCommand):
    help = "Create a site (its match threshold defaults to the default embedder's identification threshold)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--timezone", default="UTC")
        parser.add_argument("--threshold", type=float, help="Euclidean distance at or under which a face matches.")
        parser.add_argument("--min-face-px", type=int)
        parser.add_argument("--min-score", type=float, help="Minimum detection score, 0..1.")
        parser.add_argument("--exist-ok", action="store_true", help="Succeed (unchanged) if the site exists.")

    def handle(self, *args, name: str, timezone: str, threshold, min_face_px, min_score, exist_ok: bool, **opts):
        existing = Site.objects.filter(name=name).first()
        if existing is not None:
            if not exist_ok:
                raise CommandError(f"site {name!r} already exists (id {existing.pk}); use --exist-ok")
            self._show(existing, "exists")
            return
        site = Site(name=name, timezone=timezone, match_threshold=threshold)
        if min_face_px is not None:
            site.min_face_px = min_face_px
        if min_score is not None:
            site.min_detection_score = min_score
        try:
            site.full_clean()  # fills the default threshold, checks every range
        except ValidationError as exc:
            raise CommandError(f"invalid site: {exc}") from None
        site.save()
        self._show(site, "created")

    def _show(self, site: Site, verb: str) -> None:
        self.stdout.write(
            f"site {site.pk} {site.name!r} {verb}: threshold {site.match_threshold:.3f}, timezone {site.timezone}, "
            f"min face {site.min_face_px} px, min score {site.min_detection_score:.2f}"
        )
