"""The HNSW search's ef_search follows the gallery's size (issue 19): no knob for the admin to know.

100 up to 100k embeddings (recall@1 1.000 there), 200 at 1M (where 100 gave 0.970 and 200 gave 1.000), 100 more
per tenfold, at most pgvector's 1000; the size is PostgreSQL's own estimate of the table, re-read once a minute.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from enrollment import gallery
from recognition import search

from .conftest import enroll_vector, make_person, near, unit

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("rows", "ef"), [(0, 100), (5_000, 100), (100_000, 100), (300_000, 150),
                                          (1_000_000, 200), (10_000_000, 300), (10**12, 800), (10**25, 1000)])
def test_ef_search_grows_with_the_gallery(rows, ef):
    assert search.ef_search_for(rows) == ef


def test_ef_search_never_shrinks_as_the_gallery_grows():
    sizes = [10**k * m for k in range(2, 10) for m in (1, 2, 5)]
    values = [search.ef_search_for(n) for n in sizes]
    assert values == sorted(values) and values[0] == search.DEFAULT_EF_SEARCH


def _ef_used(probe, **kwargs) -> str:
    with CaptureQueriesContext(connection) as queries:
        assert gallery.nearest_people(probe, "fake", "1", **kwargs)
    settings = [q for q in queries.captured_queries if "hnsw.ef_search" in q["sql"]]
    assert len(settings) == 1, queries.captured_queries
    return settings[0]["sql"].split("set_config('hnsw.ef_search', '", 1)[1].split("'", 1)[0]


def test_the_search_uses_the_value_for_the_galleries_size(monkeypatch):
    probe = unit(70)
    for i, name in enumerate(("Alice", "Bob", "Carol")):
        enroll_vector(make_person(name), near(probe, 0.3 + 0.2 * i, seed=71 + i))
    size = {"rows": 3}
    monkeypatch.setattr(search, "gallery_size", lambda g, using="default": size["rows"])
    assert _ef_used(probe) == "100"
    size["rows"] = 1_000_000
    assert _ef_used(probe) == "200"
    size["rows"] = 5_000_000
    assert _ef_used(probe) == str(search.ef_search_for(5_000_000)) == "270"
    assert _ef_used(probe, ef_search=64) == "64"  # a caller that asks for a value gets it


def test_the_gallery_size_is_postgresqls_estimate_reread_after_a_while(monkeypatch):
    monkeypatch.setattr(search, "_sizes", {})
    people = [make_person(f"P{i}") for i in range(4)]
    for i, person in enumerate(people):
        for j in range(5):
            enroll_vector(person, unit(100 + 10 * i + j))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {gallery.PEOPLE.table}")
    assert search.gallery_size(gallery.PEOPLE) == 20
    for j in range(10):
        enroll_vector(people[0], unit(200 + j))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {gallery.PEOPLE.table}")
    assert search.gallery_size(gallery.PEOPLE) == 20  # cached for SIZE_TTL_S: no query per door snapshot
    monkeypatch.setattr(search, "SIZE_TTL_S", 0.0)
    assert search.gallery_size(gallery.PEOPLE) == 30
