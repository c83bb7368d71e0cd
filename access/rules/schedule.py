"""Weekly schedules of access levels, as pure functions of plain data (no Django, no clock, no database).

A schedule is a list of time ranges per weekday in the door's (the site's) local time, e.g.
``{"mon": [["18:00", "22:00"]], "fri": [["22:00", "02:00"]]}``. A range whose end is not after its start crosses
midnight: Friday 22:00-02:00 covers Friday from 22:00 and Saturday until 02:00, and belongs to the day it starts
(holidays and validity dates are checked on that day). ``00:00-00:00`` is the whole day; ``24:00`` is accepted as
an end. An empty schedule means any time.

Times are wall-clock times in the site's zone (``zoneinfo``): across a DST change "18:00" stays 18:00 on the wall.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MAX_RANGES_PER_DAY = 8
_TIME = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


class ScheduleError(ValueError):
    """A schedule that cannot be read: the message says which part and why."""


@dataclass(frozen=True)
class TimeRange:
    day: int  # 0 = Monday, the day the range starts
    start: int  # minutes after local midnight
    end: int  # minutes after local midnight; <= start: the range ends on the next day

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def text(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


@dataclass(frozen=True)
class Level:
    """An access level as the decision sees it: which doors, when, from when to when."""

    level_id: int
    name: str
    ranges: tuple[TimeRange, ...] = ()  # empty: any time
    valid_from: dt.date | None = None  # local dates, both included
    valid_until: dt.date | None = None
    holidays_too: bool = False  # applies on the site's holidays too (otherwise not on them)
    sites: frozenset[int] = frozenset()  # every camera of these sites
    cameras: frozenset[int] = frozenset()  # and these cameras
    # Ranges by the weekday they may match on (their own, and the next day for ones crossing midnight).
    _by_day: tuple[tuple[tuple[TimeRange, bool], ...], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        by_day: list[list[tuple[TimeRange, bool]]] = [[] for _ in DAYS]
        for r in self.ranges:
            by_day[r.day].append((r, False))  # (range, matched on its start day's successor)
            if r.crosses_midnight:
                by_day[(r.day + 1) % 7].append((r, True))
        object.__setattr__(self, "_by_day", tuple(tuple(d) for d in by_day))

    def applies_to(self, site_id: int | None, camera_id: int | None) -> bool:
        return (site_id is not None and site_id in self.sites) or (camera_id is not None and camera_id in self.cameras)

    def valid_on(self, day: dt.date) -> bool:
        return ((self.valid_from is None or self.valid_from <= day)
                and (self.valid_until is None or day <= self.valid_until))

    def allows(self, local: dt.datetime, holidays: frozenset[dt.date] | set[dt.date] = frozenset()) -> bool:
        """Whether the level lets its people in at the door's local wall-clock time ``local``."""
        today = local.date()
        if not self.ranges:
            return self.valid_on(today) and (self.holidays_too or today not in holidays)
        minute = local.hour * 60 + local.minute
        for r, from_yesterday in self._by_day[local.weekday()]:
            if from_yesterday:  # the part after midnight of a range that started yesterday
                hit, day = minute < r.end, today - dt.timedelta(days=1)
            elif r.crosses_midnight:
                hit, day = minute >= r.start, today
            else:
                hit, day = r.start <= minute < r.end, today
            if hit and self.valid_on(day) and (self.holidays_too or day not in holidays):
                return True
        return False

    def describe(self) -> str:
        """The level in words: "allowed Mon-Fri 18:00-22:00", "allowed any time, from 2026-01-01"."""
        when = describe_ranges(self.ranges) or "any time"
        words = f"allowed {when}"
        if self.valid_from and self.valid_until:
            words += f", valid {self.valid_from.isoformat()} to {self.valid_until.isoformat()}"
        elif self.valid_from:
            words += f", valid from {self.valid_from.isoformat()}"
        elif self.valid_until:
            words += f", valid until {self.valid_until.isoformat()}"
        if not self.holidays_too:
            words += ", not on holidays"
        return words


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    level: Level | None  # the level that lets in (allowed), else None
    reason: str  # why not, in words ("" when allowed)


def check(levels: Sequence[Level], local: dt.datetime, holidays: frozenset[dt.date] | set[dt.date] = frozenset()
          ) -> Verdict:
    """The first of ``levels`` that lets in at ``local``, or why none does: "Cleaning staff: allowed Mon-Fri
    18:00-22:00; now Sat 10:02"."""
    for level in levels:
        if level.allows(local, holidays):
            return Verdict(True, level, "")
    parts = [f"{level.name}: {level.describe()}" for level in levels]
    dated = any(level.valid_from or level.valid_until for level in levels) or local.date() in holidays
    now = f"now {DAY_NAMES[local.weekday()]} {local:%Y-%m-%d} {local:%H:%M}" if dated else \
        f"now {DAY_NAMES[local.weekday()]} {local:%H:%M}"
    if local.date() in holidays:
        now += ", a holiday"
    return Verdict(False, None, "; ".join([*parts, now]))


@lru_cache(maxsize=256)
def zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def local_time(now: dt.datetime, tz_name: str) -> dt.datetime:
    """The door's wall-clock time at the (aware) instant ``now``."""
    return now.astimezone(zone(tz_name))


# ---------------------------------------------------------------- reading and writing schedules ------------------

def _minutes(text: object, where: str, end: bool) -> int:
    if not isinstance(text, str) or not (m := _TIME.match(text.strip())):
        raise ScheduleError(f"{where}: {text!r} is not a time HH:MM")
    hours, minutes = int(m.group(1)), int(m.group(2))
    if hours == 24 and (minutes or not end):
        raise ScheduleError(f"{where}: {text!r} is not a time of day (24:00 only as an end)")
    return (hours * 60 + minutes) % (24 * 60)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse(data: object) -> tuple[TimeRange, ...]:
    """Ranges from the stored / posted form ``{"mon": [["18:00", "22:00"], ...], ...}``; ScheduleError says what
    is wrong. Overlapping ranges of one day are refused (a grid editor's slip, not an intent)."""
    if data in (None, "", {}):
        return ()
    if not isinstance(data, Mapping):
        raise ScheduleError('a schedule is an object of weekdays, e.g. {"mon": [["18:00", "22:00"]]}')
    ranges: list[TimeRange] = []
    for key, day_ranges in data.items():
        if key not in DAYS:
            raise ScheduleError(f"{key!r} is not a weekday ({', '.join(DAYS)})")
        if not isinstance(day_ranges, list) or len(day_ranges) > MAX_RANGES_PER_DAY:
            raise ScheduleError(f"{key}: a list of at most {MAX_RANGES_PER_DAY} [start, end] ranges")
        day = DAYS.index(key)
        spans: list[tuple[int, int]] = []
        for i, pair in enumerate(day_ranges):
            where = f"{key} range {i + 1}"
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ScheduleError(f"{where}: a [start, end] pair")
            start, end = _minutes(pair[0], where, end=False), _minutes(pair[1], where, end=True)
            r = TimeRange(day, start, end)
            span = (start, end if not r.crosses_midnight else 24 * 60)
            if any(a < span[1] and span[0] < b for a, b in spans):
                raise ScheduleError(f"{where}: {r.text()} overlaps another range of {DAY_NAMES[day]}")
            spans.append(span)
            ranges.append(r)
    return tuple(sorted(ranges, key=lambda r: (r.day, r.start)))


def dump(ranges: Iterable[TimeRange]) -> dict[str, list[list[str]]]:
    """The stored form of ``ranges`` (the inverse of :func:`parse`)."""
    out: dict[str, list[list[str]]] = {}
    for r in sorted(ranges, key=lambda r: (r.day, r.start)):
        out.setdefault(DAYS[r.day], []).append([_hhmm(r.start), _hhmm(r.end)])
    return out


def describe_ranges(ranges: Sequence[TimeRange]) -> str:
    """"Mon-Fri 18:00-22:00, Sat 08:00-12:00 and 14:00-16:00": runs of consecutive days with the same ranges."""
    per_day = [" and ".join(r.text() for r in sorted(ranges, key=lambda r: r.start) if r.day == d) for d in range(7)]
    runs: list[tuple[int, int, str]] = []
    for d, text in enumerate(per_day):
        if not text:
            continue
        if runs and runs[-1][1] == d - 1 and runs[-1][2] == text:
            runs[-1] = (runs[-1][0], d, text)
        else:
            runs.append((d, d, text))
    words = []
    for first, last, text in runs:
        days = DAY_NAMES[first] if first == last else (
            f"{DAY_NAMES[first]}, {DAY_NAMES[last]}" if last == first + 1 else f"{DAY_NAMES[first]}-{DAY_NAMES[last]}")
        words.append(f"{days} {text}")
    return ", ".join(words)
