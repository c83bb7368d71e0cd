"""Weekly schedules of access levels (access.rules.schedule): pure, no database, no clock."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from access.rules.schedule import Level, ScheduleError, check, describe_ranges, dump, local_time, parse

BERLIN = "Europe/Berlin"


def level(schedule: dict, name: str = "Cleaning staff", **fields) -> Level:
    return Level(1, name, parse(schedule), **fields)


def at(text: str, tz: str = "UTC") -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zoneinfo.ZoneInfo(tz))


CLEANING = {d: [["18:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def test_weekday_ranges_and_the_reason_a_person_can_read():
    cleaning = level(CLEANING)
    assert cleaning.allows(at("2026-12-07 18:00"))  # a Monday, the first minute
    assert cleaning.allows(at("2026-12-11 21:59"))  # Friday, the last minute
    assert not cleaning.allows(at("2026-12-07 22:00"))  # the end is not included
    assert not cleaning.allows(at("2026-12-07 17:59"))
    verdict = check([cleaning], at("2026-12-12 10:02"))  # a Saturday
    assert not verdict.allowed
    assert verdict.reason == "Cleaning staff: allowed Mon-Fri 18:00-22:00, not on holidays; now Sat 10:02"


def test_a_range_crossing_midnight_belongs_to_the_day_it_starts():
    night = level({"fri": [["22:00", "02:00"]]}, "Night shift")
    assert night.allows(at("2026-12-11 23:30"))  # Friday night
    assert night.allows(at("2026-12-12 01:59"))  # Saturday, after midnight: Friday's range
    assert not night.allows(at("2026-12-12 02:00"))
    assert not night.allows(at("2026-12-11 01:00"))  # Friday after midnight is Thursday's: none
    assert not night.allows(at("2026-12-12 23:00"))  # Saturday evening
    # A holiday on Saturday does not cut Friday's night; one on Friday does.
    assert night.allows(at("2026-12-12 01:00"), {dt.date(2026, 12, 12)})
    assert not night.allows(at("2026-12-12 01:00"), {dt.date(2026, 12, 11)})
    # Sunday's range crossing midnight goes on into Monday.
    assert level({"sun": [["23:00", "01:00"]]}).allows(at("2026-12-14 00:30"))


def test_whole_days_and_24_00():
    assert level({"sat": [["00:00", "00:00"]]}).allows(at("2026-12-12 23:59"))
    assert level({"sat": [["20:00", "24:00"]]}).allows(at("2026-12-12 23:59"))
    assert not level({"sat": [["20:00", "24:00"]]}).allows(at("2026-12-13 00:00"))


def test_wall_clock_time_across_dst_changes():
    """18:00-22:00 in Berlin is 17:00-21:00 UTC in winter and 16:00-20:00 UTC in summer."""
    cleaning = level(CLEANING)
    winter, summer = at("2026-03-27 20:30"), at("2026-03-30 20:30")  # Fri before, Mon after the change (Mar 29)
    assert cleaning.allows(local_time(winter, BERLIN))  # 21:30 in Berlin
    assert not cleaning.allows(local_time(summer, BERLIN))  # 22:30 in Berlin
    assert cleaning.allows(local_time(at("2026-03-30 16:00"), BERLIN))  # 18:00 in Berlin, summer time
    assert not cleaning.allows(local_time(at("2026-03-27 16:30"), BERLIN))  # 17:30 in Berlin, winter time
    # A night range over the night the clocks go back (Oct 25): 02:30 happens twice, both inside.
    night = level({"sat": [["23:00", "03:00"]]})
    first, second = at("2026-10-25 00:30"), at("2026-10-25 01:30")  # UTC: 02:30 CEST, then 02:30 CET
    assert local_time(first, BERLIN).strftime("%H:%M") == local_time(second, BERLIN).strftime("%H:%M") == "02:30"
    assert night.allows(local_time(first, BERLIN)) and night.allows(local_time(second, BERLIN))
    assert not night.allows(local_time(at("2026-10-25 02:00"), BERLIN))  # 03:00 CET


def test_holidays_apply_only_to_levels_marked_holidays_too():
    christmas = {dt.date(2026, 12, 25)}  # a Friday
    assert not level(CLEANING).allows(at("2026-12-25 19:00"), christmas)
    assert level(CLEANING, holidays_too=True).allows(at("2026-12-25 19:00"), christmas)
    assert not level({}).allows(at("2026-12-25 19:00"), christmas)  # "any time" but not on holidays
    verdict = check([level(CLEANING)], at("2026-12-25 19:00"), christmas)
    assert verdict.reason.endswith("now Fri 2026-12-25 19:00, a holiday")


def test_validity_dates_include_both_days():
    contractors = level({}, "Contractors", valid_from=dt.date(2026, 1, 1), valid_until=dt.date(2026, 3, 31))
    assert contractors.allows(at("2026-01-01 00:00")) and contractors.allows(at("2026-03-31 23:59"))
    assert not contractors.allows(at("2025-12-31 23:59")) and not contractors.allows(at("2026-04-01 00:00"))
    assert check([contractors], at("2026-04-02 10:00")).reason == \
        "Contractors: allowed any time, valid 2026-01-01 to 2026-03-31, not on holidays; now Thu 2026-04-02 10:00"


def test_several_levels_the_first_that_allows_wins_and_the_reason_lists_them_all():
    cleaning = level(CLEANING)
    weekend = Level(2, "Weekend", parse({"sat": [["08:00", "09:00"]]}), holidays_too=True)
    assert check([cleaning, weekend], at("2026-12-12 08:30")).level == weekend
    assert check([cleaning, weekend], at("2026-12-07 19:00")).level == cleaning
    assert check([cleaning, weekend], at("2026-12-12 10:02")).reason == (
        "Cleaning staff: allowed Mon-Fri 18:00-22:00, not on holidays; Weekend: allowed Sat 08:00-09:00; "
        "now Sat 10:02")


def test_doors_are_sites_or_single_cameras():
    lv = Level(1, "Server room", (), sites=frozenset({3}), cameras=frozenset({9}))
    assert lv.applies_to(3, 1) and lv.applies_to(4, 9) and not lv.applies_to(4, 1)


@pytest.mark.parametrize("bad, words", [
    ([["18:00", "22:00"]], "object of weekdays"),
    ({"monday": [["18:00", "22:00"]]}, "not a weekday"),
    ({"mon": [["18:00"]]}, "[start, end]"),
    ({"mon": [["25:00", "22:00"]]}, "not a time"),
    ({"mon": [["24:00", "22:00"]]}, "24:00 only as an end"),
    ({"mon": [["18:00", "22:00"], ["21:00", "23:00"]]}, "overlaps"),
    ({"mon": "18:00-22:00"}, "a list of"),
])
def test_bad_schedules_say_what_is_wrong(bad, words):
    with pytest.raises(ScheduleError) as caught:
        parse(bad)
    assert words in str(caught.value)


def test_stored_form_round_trips_and_reads_as_runs_of_days():
    data = {"mon": [["18:00", "22:00"]], "tue": [["18:00", "22:00"]], "sat": [["08:00", "12:00"], ["14:00", "16:00"]]}
    assert dump(parse(data)) == data
    assert describe_ranges(parse(data)) == "Mon, Tue 18:00-22:00, Sat 08:00-12:00 and 14:00-16:00"
