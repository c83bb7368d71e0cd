"""Access rules from the database into the pure forms the decision takes (:mod:`access.rules.schedule`): the
access levels that apply to some people (directly or through their groups), and a site's holidays."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Q

from . import schedule
from .models import AccessLevel, Holiday, PersonGroup

Levels = dict[int, tuple[schedule.Level, ...]]


def level_of(row: AccessLevel, sites: frozenset[int], cameras: frozenset[int]) -> schedule.Level:
    try:
        ranges = schedule.parse(row.schedule)
    except schedule.ScheduleError:  # unreadable (edited outside the API and the console): never, not always
        return schedule.Level(row.pk, row.name, (), dt.date.max, dt.date.min, row.holidays_too, sites, cameras)
    return schedule.Level(row.pk, row.name, ranges, row.valid_from, row.valid_until, row.holidays_too, sites, cameras)


def levels_for(person_ids: set[int], site_id: int | None = None) -> Levels:
    """Each person's access levels (theirs and their groups'), with their doors; only the levels with a door at
    ``site_id`` when given (the live decision), every level otherwise (a replay across cameras)."""
    if not person_ids:
        return {}
    direct = AccessLevel.people.through.objects.filter(person_id__in=person_ids).values_list("person_id",
                                                                                            "accesslevel_id")
    via_groups = (AccessLevel.groups.through.objects
                  .filter(persongroup__members__in=person_ids)
                  .values_list("persongroup__members", "accesslevel_id"))
    pairs = [*direct, *via_groups]
    if not pairs:
        return {}
    rows = AccessLevel.objects.filter(pk__in={lv for _, lv in pairs})
    if site_id is not None:
        rows = rows.filter(Q(sites=site_id) | Q(cameras__site_id=site_id)).distinct()
    doors_sites: dict[int, set[int]] = defaultdict(set)
    doors_cameras: dict[int, set[int]] = defaultdict(set)
    rows = list(rows.prefetch_related("sites", "cameras"))
    for row in rows:
        doors_sites[row.pk].update(s.pk for s in row.sites.all())
        doors_cameras[row.pk].update(c.pk for c in row.cameras.all())
    levels = {row.pk: level_of(row, frozenset(doors_sites[row.pk]), frozenset(doors_cameras[row.pk]))
              for row in rows}
    out: dict[int, list[schedule.Level]] = defaultdict(list)
    for person_id, level_id in pairs:
        level = levels.get(level_id)
        if level is not None and level not in out[person_id]:
            out[person_id].append(level)
    return {pid: tuple(sorted(lvs, key=lambda lv: lv.name)) for pid, lvs in out.items()}


def holidays_of(site_id: int | None) -> frozenset[dt.date]:
    if site_id is None:
        return frozenset()
    return frozenset(Holiday.objects.filter(site_id=site_id).values_list("date", flat=True))


def groups_of(person_id: int) -> list[PersonGroup]:
    return list(PersonGroup.objects.filter(members=person_id))
