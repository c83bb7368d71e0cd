"""manage.py apply_retention [--dry-run]: delete door snapshots past each site's retention windows."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from access.lifecycle.retention import apply_retention


class Command(BaseCommand):
    help = ("Delete snapshot files (and blank face embeddings) of events older than each site's retention "
            "window: retain_unknown_days for events without a recognised person, retain_known_days otherwise. "
            "The events stay. Runs daily through Celery beat; this command runs it now.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only say what would be deleted.")

    def handle(self, *args, dry_run: bool, **opts) -> None:
        report = apply_retention(dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        for site, c in report.sites.items():
            self.stdout.write(f"{site}: {verb} {c['snapshots']} snapshots ({c['unknown']} unknown, "
                              f"{c['known']} recognised events)")
        if not report.sites:
            self.stdout.write("no site")
