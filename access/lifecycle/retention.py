"""Per-site retention: snapshots of unknown faces are kept briefly, those of recognised people longer; after
that the file is deleted and the stored face embeddings blanked. Events stay (the log is the log)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from faceaccess.files import delete_file_on_commit

from ..models import AccessEvent, AccessEventFace, Site


@dataclass
class RetentionReport:
    sites: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def snapshots(self) -> int:
        return sum(s["snapshots"] for s in self.sites.values())


def expired(site: Site, now: dt.datetime):
    """Events of ``site`` past their window that still hold a snapshot or face embeddings."""
    holding = Q(snapshot__gt="") | Q(faces__embedding__isnull=False)
    known = Q(person__isnull=False)
    unknown_before = now - dt.timedelta(days=site.retain_unknown_days)
    known_before = now - dt.timedelta(days=site.retain_known_days)
    return (AccessEvent.objects.filter(site=site).filter(holding)
            .filter((~known & Q(received_at__lt=unknown_before)) | (known & Q(received_at__lt=known_before)))
            .exclude(status=AccessEvent.Status.PENDING).distinct())


def apply_retention(now: dt.datetime | None = None, dry_run: bool = False) -> RetentionReport:
    now = now or timezone.now()
    report = RetentionReport()
    for site in Site.objects.all():
        events = list(expired(site, now).only("pk", "snapshot", "person_id"))
        report.sites[site.name] = {
            "snapshots": sum(1 for e in events if e.snapshot),
            "unknown": sum(1 for e in events if e.person_id is None),
            "known": sum(1 for e in events if e.person_id is not None),
        }
        if dry_run or not events:
            continue
        with transaction.atomic():
            for event in events:
                delete_file_on_commit(event.snapshot)
            ids = [e.pk for e in events]
            AccessEvent.objects.filter(pk__in=ids).update(snapshot="")
            AccessEventFace.objects.filter(event_id__in=ids).update(embedding=None)
    return report
