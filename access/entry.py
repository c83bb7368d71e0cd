"""Where and when a person may enter: one row per door (a whole site, or one camera) and way in (a grant of the
site at any time, or an access level with its schedule), computed from the same rows the decision reads. For the
person's page and ``GET /api/v1/people/<id>/access/``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from enrollment.models import Person

from .models import AccessGrant, Camera, Site
from .rules import factors
from .rules.models import AccessLevel

MODE_WORDS = dict(factors.MODE_CHOICES)


@dataclass(frozen=True)
class EntryRow:
    site_id: int
    site: str
    camera_id: int | None  # None: every camera of the site
    camera: str  # "every camera" or the camera's name
    how: str  # "site grant" or the level's name
    via: str  # "directly" or "group <name>"
    when: str  # "any time", "Mon-Fri 18:00-22:00, not on holidays"
    valid: str  # "" or "2026-01-01 to 2026-03-31"
    verification: str  # "face", "face + PIN" ...
    timezone: str
    note: str = ""  # e.g. "not on this camera's allow-list"

    def as_dict(self) -> dict:
        return asdict(self)


def _valid(start, end) -> str:
    if start and end:
        return f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"
    if start:
        return f"from {start:%Y-%m-%d}"
    return f"until {end:%Y-%m-%d}" if end else ""


def entry_rows(person: Person) -> list[EntryRow]:
    """Every door the person may use and when, sorted by site and camera."""
    from .rules.schedule import describe_ranges, parse

    rows: list[EntryRow] = []
    allow_lists = {c.pk: {p.pk for p in c.allowed_people.all()}
                   for c in Camera.objects.filter(site__in=person.sites.all()).prefetch_related("allowed_people")}

    def cameras_note(site: Site) -> str:
        narrowed = [c for c in site.cameras.all() if allow_lists.get(c.pk) and person.pk not in allow_lists[c.pk]]
        return "not on the allow-list of " + ", ".join(c.name for c in narrowed) if narrowed else ""

    for grant in AccessGrant.objects.filter(person=person).select_related("site").prefetch_related("site__cameras"):
        site = grant.site
        rows.append(EntryRow(site.pk, site.name, None, "every camera", "site grant", "directly", "any time",
                             _valid(grant.valid_from, grant.valid_until), MODE_WORDS[site.verification],
                             site.timezone, cameras_note(site)))
    groups = {g.pk: g.name for g in person.access_groups.all()}
    levels = (AccessLevel.objects.filter(people=person) | AccessLevel.objects.filter(groups__in=list(groups)))
    for level in levels.distinct().prefetch_related("sites", "cameras__site", "groups", "people"):
        via_groups = [groups[g.pk] for g in level.groups.all() if g.pk in groups]
        via = "directly" if person in level.people.all() else ""
        via = ", ".join([*([via] if via else []), *(f"group {name}" for name in via_groups)])
        try:
            when = describe_ranges(parse(level.schedule)) or "any time"
        except ValueError:
            when = "never (unreadable schedule)"
        when += "" if level.holidays_too else ", not on holidays"
        valid = _valid(level.valid_from, level.valid_until)
        for site in level.sites.all():
            rows.append(EntryRow(site.pk, site.name, None, "every camera", level.name, via, when, valid,
                                 MODE_WORDS[site.verification], site.timezone))
        for camera in level.cameras.all():
            site = camera.site
            rows.append(EntryRow(site.pk, site.name, camera.pk, camera.name, level.name, via, when, valid,
                                 MODE_WORDS[camera.verification or site.verification], site.timezone))
    return sorted(rows, key=lambda r: (r.site, r.camera_id is not None, r.camera, r.how))
