"""The access-rule check per decision with many rules: 10,000 people, 500 groups, 200 access levels.

    .venv/bin/python bench/rules_bench.py                  # throwaway embedded PostgreSQL 18
    DATABASE_URL=postgresql://... .venv/bin/python bench/rules_bench.py   # an existing, migrated, EMPTY-able server

Data (seeded): 20 sites (time zones around the world, 10 holidays each) with 5 cameras each; 200 levels, half with
sites as doors and half with single cameras, each with a weekly schedule of 1-2 ranges on 3-7 days (some crossing
midnight), a third with validity dates; 500 groups with 2-5 levels each; 10,000 people in 1-3 groups each, a fifth
of them with a level of their own and a tenth with a site grant. Probes: a random person at a random camera at a
random instant of 2026.

Two figures per decision, medians and p99 over the probes:
- check: the pure rule check, ``access.decisions.decide`` on one matched face with the person's levels, in the
  door's local time (zoneinfo), with the site's holidays: what the worker and the what-if replay run;
- load:  reading the candidate's rules from PostgreSQL as the worker does (``person_facts(..., site_id)``: the person,
  the grants, the levels through groups with their doors in one statement) plus the site's holidays when the
  candidate has levels there (``with_holidays``).
Writes out/rules_bench.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland",
         "America/Los_Angeles", "Asia/Kolkata", "Europe/London", "America/Sao_Paulo"]


def populate(rng: random.Random, people_n: int, groups_n: int, levels_n: int, sites_n: int) -> dict:
    from django.db import transaction

    from access.models import AccessGrant, Camera, Site
    from access.rules.models import AccessLevel, Holiday, PersonGroup
    from access.rules.schedule import DAYS
    from enrollment.models import Person

    with transaction.atomic():
        sites = Site.objects.bulk_create([Site(name=f"bench site {i}", timezone=ZONES[i % len(ZONES)],
                                               match_threshold=0.9, threshold_model="bench") for i in range(sites_n)])
        cameras = Camera.objects.bulk_create([Camera(site=s, name=f"cam {j}", key_prefix=f"{s.pk:04d}{j:04d}",
                                                     key_hash="0" * 64) for s in sites for j in range(5)])
        Holiday.objects.bulk_create([Holiday(site=s, date=dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(365)),
                                             name="h") for s in sites for _ in range(10)], ignore_conflicts=True)
        levels = []
        for i in range(levels_n):
            schedule = {}
            for day in rng.sample(DAYS, rng.randint(3, 7)):
                start = rng.randrange(0, 24 * 60, 30)
                length = rng.choice([120, 240, 480, 600])
                end = (start + length) % (24 * 60)
                schedule[day] = [[f"{start // 60:02d}:{start % 60:02d}", f"{end // 60:02d}:{end % 60:02d}"]]
            dated = i % 3 == 0
            levels.append(AccessLevel(name=f"bench level {i}", schedule=schedule, holidays_too=i % 4 == 0,
                                      valid_from=dt.date(2026, 1, 1) if dated else None,
                                      valid_until=dt.date(2026, 9, 30) if dated else None))
        levels = AccessLevel.objects.bulk_create(levels)
        level_sites, level_cameras = AccessLevel.sites.through, AccessLevel.cameras.through
        level_sites.objects.bulk_create([level_sites(accesslevel=lv, site=s) for lv in levels[: levels_n // 2]
                                         for s in rng.sample(sites, 2)])
        level_cameras.objects.bulk_create([level_cameras(accesslevel=lv, camera=c) for lv in levels[levels_n // 2:]
                                           for c in rng.sample(cameras, 3)])
        groups = PersonGroup.objects.bulk_create([PersonGroup(name=f"bench group {i}") for i in range(groups_n)])
        level_groups = AccessLevel.groups.through
        level_groups.objects.bulk_create([level_groups(accesslevel=lv, persongroup=g) for g in groups
                                          for lv in rng.sample(levels, rng.randint(2, 5))])
        people = Person.objects.bulk_create([Person(name=f"bench person {i}") for i in range(people_n)])
        members = PersonGroup.members.through
        members.objects.bulk_create([members(persongroup=g, person=p) for p in people
                                     for g in rng.sample(groups, rng.randint(1, 3))])
        level_people = AccessLevel.people.through
        level_people.objects.bulk_create([level_people(accesslevel=rng.choice(levels), person=p)
                                          for p in people if rng.random() < 0.2])
        AccessGrant.objects.bulk_create([AccessGrant(site=rng.choice(sites), person=p) for p in people
                                         if rng.random() < 0.1])
    return {"people": [p.pk for p in people], "cameras": cameras}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(rng: random.Random, data: dict, probes: int) -> dict:
    from access import decisions
    from access.decision_inputs import camera_rules, person_facts, site_rules, with_holidays
    from access.rules import loading
    from enrollment.models import Person

    cameras = data["cameras"]
    rules_by_site: dict[int, decisions.SiteRules] = {}
    check_us, load_us, levels_us, base_us, before_us, outcomes, levels_seen = [], [], [], [], [], {}, []
    start_2026 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for _ in range(probes):
        person_id, camera = rng.choice(data["people"]), rng.choice(cameras)
        now = start_2026 + dt.timedelta(seconds=rng.randrange(365 * 86400))
        t0 = time.perf_counter()
        Person.objects.filter(pk=person_id).values_list("pk", flat=True).first()  # one round trip, for scale
        t1 = time.perf_counter()
        people = person_facts({person_id}, site_id=camera.site_id)
        holidays = with_holidays(decisions.SiteRules(camera.site_id, 0.9, 40, 0.9), people).holidays
        t2 = time.perf_counter()
        loading.levels_for({person_id}, camera.site_id)
        t3 = time.perf_counter()
        list(Person.objects.filter(pk__in={person_id}).prefetch_related("grants"))  # what was read before levels
        before_us.append((time.perf_counter() - t3) * 1e6)
        base_us.append((t1 - t0) * 1e6)
        load_us.append((t2 - t1) * 1e6)
        levels_us.append((t3 - t2) * 1e6)
        if camera.site_id not in rules_by_site:
            rules_by_site[camera.site_id] = site_rules(camera.site, "bench")
        site = rules_by_site[camera.site_id]
        assert site.holidays == holidays or not people[person_id].levels
        door = camera_rules(camera)
        face = decisions.FaceInput(0.99, 100.0, person_id, 0.4)
        t0 = time.perf_counter()
        outcome = decisions.decide([face], site, door, people, now)
        check_us.append((time.perf_counter() - t0) * 1e6)
        outcomes[outcome.code or outcome.decision] = outcomes.get(outcome.code or outcome.decision, 0) + 1
        levels_seen.append(len(people[person_id].levels))
    return {
        "check_us": {"median": round(statistics.median(check_us), 1), "p99": round(percentile(check_us, 0.99), 1)},
        "load_us": {"median": round(statistics.median(load_us), 1), "p99": round(percentile(load_us, 0.99), 1)},
        "levels_query_us": {"median": round(statistics.median(levels_us), 1),
                            "p99": round(percentile(levels_us, 0.99), 1)},
        "before_levels_person_and_grants_us": {"median": round(statistics.median(before_us), 1),
                                               "p99": round(percentile(before_us, 0.99), 1)},
        "one_primary_key_query_us": {"median": round(statistics.median(base_us), 1),
                                     "p99": round(percentile(base_us, 0.99), 1)},
        "outcomes": outcomes,
        "levels_per_candidate_at_the_site": {"median": statistics.median(levels_seen), "max": max(levels_seen)},
    }


def explain(data: dict) -> None:
    """Each query of one rule read, timed (``--explain``)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from access.decision_inputs import person_facts

    camera = data["cameras"][0]
    with CaptureQueriesContext(connection) as queries:
        person_facts({data["people"][0]}, site_id=camera.site_id)
    for q in queries.captured_queries:
        print(f"{float(q['time']) * 1000:8.2f} ms  {q['sql'][:300]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--levels", type=int, default=200)
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--probes", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--explain", action="store_true", help="print the queries of one rule read, timed")
    parser.add_argument("--json", type=Path, default=REPO / "out" / "rules_bench.json")
    args = parser.parse_args(argv)

    server = tmp = None
    if not os.environ.get("DATABASE_URL"):
        from faceaccess.embedded import EmbeddedPostgres, free_port

        tmp = Path(tempfile.mkdtemp(prefix="faceaccess-rules-bench-"))
        tmp.chmod(0o755)
        server = EmbeddedPostgres(tmp / "pgdata", port=free_port(), password="bench", durable=False)
        os.environ["DATABASE_URL"] = server.start()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "faceaccess.settings")
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        rng = random.Random(args.seed)
        t0 = time.perf_counter()
        data = populate(rng, args.people, args.groups, args.levels, args.sites)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum would soon after a bulk load: the planner's statistics
        print(f"{args.people:,} people, {args.groups} groups, {args.levels} levels, {args.sites} sites: loaded in "
              f"{time.perf_counter() - t0:.1f} s; {args.probes:,} probes ...", flush=True)
        measure(rng, data, 200)  # warm-up: connections, caches, zoneinfo
        result = measure(rng, data, args.probes)
        if args.explain:
            explain(data)
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    report = {"people": args.people, "groups": args.groups, "levels": args.levels, "sites": args.sites,
              "probes": args.probes, "machine": f"{platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores", **result}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"rule check (pure decide): median {result['check_us']['median']} us, p99 {result['check_us']['p99']} us")
    print(f"rules read from PostgreSQL: median {result['load_us']['median']} us, p99 {result['load_us']['p99']} us "
          f"(of which the levels' one query: median {result['levels_query_us']['median']} us; the person and grants "
          f"read before access levels existed: median {result['before_levels_person_and_grants_us']['median']} us; "
          f"one primary-key query for scale: median {result['one_primary_key_query_us']['median']} us)")
    print(f"outcomes {result['outcomes']}; levels per candidate at the door's site "
          f"{result['levels_per_candidate_at_the_site']}; written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
