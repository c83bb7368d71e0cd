"""Access rules from the database into the pure forms the decision takes (:mod:`access.rules.schedule`): the
access levels that apply to some people (directly or through their groups), and a site's holidays."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from functools import lru_cache

from django.db import connection

from . import schedule
from .models import AccessLevel, Holiday, PersonGroup

Levels = dict[int, tuple[schedule.Level, ...]]


def _tables() -> dict[str, str]:
    return {"level": AccessLevel._meta.db_table, "people": AccessLevel.people.through._meta.db_table,
            "groups": AccessLevel.groups.through._meta.db_table, "sites": AccessLevel.sites.through._meta.db_table,
            "cameras": AccessLevel.cameras.through._meta.db_table,
            "members": PersonGroup.members.through._meta.db_table,
            "camera": AccessLevel.cameras.field.related_model._meta.db_table}


# One statement per decision (the worker's hot path; bench/rules_bench.py): the people's levels, directly or through
# their groups, each with its doors, only those with a door at the site when one is given.
_LEVELS_SQL = """
WITH mine AS (
    SELECT lp.accesslevel_id AS level_id, lp.person_id FROM {people} lp WHERE lp.person_id = ANY(%(people)s)
    UNION
    SELECT lg.accesslevel_id, m.person_id FROM {members} m JOIN {groups} lg ON lg.persongroup_id = m.persongroup_id
    WHERE m.person_id = ANY(%(people)s)
)
SELECT mine.person_id, l.id, l.name, l.schedule, l.holidays_too, l.valid_from, l.valid_until,
       ARRAY(SELECT ls.site_id FROM {sites} ls WHERE ls.accesslevel_id = l.id),
       ARRAY(SELECT lc.camera_id FROM {cameras} lc WHERE lc.accesslevel_id = l.id)
FROM mine JOIN {level} l ON l.id = mine.level_id
WHERE %(site)s::bigint IS NULL
   OR EXISTS (SELECT 1 FROM {sites} ls WHERE ls.accesslevel_id = l.id AND ls.site_id = %(site)s)
   OR EXISTS (SELECT 1 FROM {cameras} lc JOIN {camera} c ON c.id = lc.camera_id
              WHERE lc.accesslevel_id = l.id AND c.site_id = %(site)s)
ORDER BY mine.person_id, l.name
"""


@lru_cache(maxsize=4096)
def _ranges(schedule_json: str) -> tuple[schedule.TimeRange, ...] | None:
    """A stored schedule, parsed once per process (None: unreadable)."""
    try:
        return schedule.parse(json.loads(schedule_json))
    except (schedule.ScheduleError, ValueError):
        return None


def _level(pk: int, name: str, stored: object, valid_from: dt.date | None, valid_until: dt.date | None,
           holidays_too: bool, sites: frozenset[int], cameras: frozenset[int]) -> schedule.Level:
    ranges = _ranges(json.dumps(stored, sort_keys=True))
    if ranges is None:  # unreadable (edited outside the API and the console): never, not always
        return schedule.Level(pk, name, (), dt.date.max, dt.date.min, holidays_too, sites, cameras)
    return schedule.Level(pk, name, ranges, valid_from, valid_until, holidays_too, sites, cameras)


def levels_for(person_ids: set[int], site_id: int | None = None) -> Levels:
    """Each person's access levels (theirs and their groups'), with their doors; only the levels with a door at
    ``site_id`` when given (the live decision), every level otherwise (a replay across cameras). One query."""
    if not person_ids:
        return {}
    out: dict[int, list[schedule.Level]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(_LEVELS_SQL.format(**_tables()), {"people": sorted(person_ids), "site": site_id})
        for person_id, pk, name, stored, holidays_too, valid_from, valid_until, sites, cameras in cursor.fetchall():
            if isinstance(stored, str):  # a driver that hands JSON back as text
                stored = json.loads(stored)
            out[person_id].append(_level(pk, name, stored, valid_from, valid_until, holidays_too,
                                         frozenset(sites), frozenset(cameras)))
    return {pid: tuple(levels) for pid, levels in out.items()}


def holidays_of(site_id: int | None) -> frozenset[dt.date]:
    if site_id is None:
        return frozenset()
    return frozenset(Holiday.objects.filter(site_id=site_id).values_list("date", flat=True))

