"""Nearest-person search in the real PostgreSQL with pgvector."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from enrollment import gallery
from recognition import search

from .conftest import enroll_vector, make_person, near, unit

pytestmark = pytest.mark.django_db


def test_nearest_person_and_runner_up():
    probe = unit(1)
    alice, bob, carol = make_person("Alice"), make_person("Bob"), make_person("Carol")
    enroll_vector(alice, near(probe, 0.40, seed=2))
    enroll_vector(bob, near(probe, 0.80, seed=3))
    enroll_vector(carol, near(probe, 1.20, seed=4))
    (m,) = gallery.identify([probe], "fake", "1")
    assert m.nearest.identity_id == alice.pk and m.nearest.distance == pytest.approx(0.40, abs=1e-4)
    assert m.runner_up.identity_id == bob.pk and m.runner_up.distance == pytest.approx(0.80, abs=1e-4)


def test_a_persons_distance_is_the_minimum_over_their_embeddings():
    probe = unit(10)
    alice, bob = make_person("Alice"), make_person("Bob")
    enroll_vector(alice, near(probe, 1.1, seed=11))
    enroll_vector(alice, near(probe, 0.3, seed=12))
    enroll_vector(bob, near(probe, 0.5, seed=13))
    people = gallery.nearest_people(probe, "fake", "1", k=2)
    assert [p.identity_id for p in people] == [alice.pk, bob.pk]
    assert people[0].distance == pytest.approx(0.3, abs=1e-4)


def test_embeddings_of_other_models_are_never_compared():
    probe = unit(20)
    alice, bob = make_person("Alice"), make_person("Bob")
    enroll_vector(alice, probe, model=("other", "1"))  # identical vector, other model
    enroll_vector(alice, near(probe, 0.2, seed=21), model=("fake", "2"))  # same name, other version
    enroll_vector(bob, near(probe, 0.9, seed=22))
    (m,) = gallery.identify([probe], "fake", "1")
    assert (m.nearest.identity_id, m.runner_up) == (bob.pk, None)
    assert gallery.identify([probe], "nobody", "0")[0].nearest is None


def test_runner_up_found_past_a_person_with_many_close_embeddings():
    # Alice's 40 photos are all nearer than Bob's one: the runner-up is not among the nearest rows.
    probe = unit(30)
    alice, bob = make_person("Alice"), make_person("Bob")
    for i in range(40):
        enroll_vector(alice, near(probe, 0.2 + i * 0.005, seed=100 + i))
    enroll_vector(bob, near(probe, 0.9, seed=31))
    (m,) = gallery.identify([probe], "fake", "1")
    assert m.nearest.identity_id == alice.pk
    assert m.runner_up.identity_id == bob.pk and m.runner_up.distance == pytest.approx(0.9, abs=1e-4)


def test_hnsw_agrees_with_exact_search():
    rng = np.random.default_rng(0)
    people = [make_person(f"P{i}") for i in range(30)]
    for i, person in enumerate(people):
        for j in range(3):
            enroll_vector(person, unit(1000 + 10 * i + j))
    for _ in range(20):
        probe = rng.standard_normal(128).astype(np.float32)
        probe /= np.linalg.norm(probe)
        for k in (2, 3):
            fast = gallery.nearest_people(probe, "fake", "1", k=k)
            exact = gallery.nearest_people(probe, "fake", "1", k=k, exact=True)
            assert [p.identity_id for p in fast] == [p.identity_id for p in exact]
            assert [p.distance for p in fast] == pytest.approx([p.distance for p in exact], abs=1e-5)


def _crowd(n: int, seed: int) -> None:
    """``n`` random unit embeddings of one person "Crowd", about 1.41 from any probe (1.1 at the nearest)."""
    _bulk_enroll(make_person("Crowd"), np.random.default_rng(seed).standard_normal((n, 128)))


def _bulk_enroll(person, vectors: np.ndarray) -> None:
    from django.core.files.base import ContentFile

    from enrollment.models import FaceEmbedding, FaceImage

    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    face = FaceImage(person=person)
    face.image.save("bulk.png", ContentFile(b"x"), save=False)
    face.save()
    faces = FaceImage.objects.bulk_create(
        [FaceImage(person=person, image=face.image.name) for _ in range(len(vectors) - 1)]
    )
    FaceEmbedding.objects.bulk_create(
        FaceEmbedding(person=person, face_image=f, embedding=v.tolist(), model_name="fake", model_version="1")
        for f, v in zip([face, *faces], vectors, strict=True)
    )


def _analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE enrollment_faceembedding")


def _scans() -> tuple[int, int]:
    """(HNSW index scans, sequential scans of the embedding table) so far in this transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_get_xact_numscans('faceembedding_hnsw_l2'::regclass), "
            "pg_stat_get_xact_numscans('enrollment_faceembedding'::regclass)"
        )
        return cursor.fetchone()


def test_the_planner_walks_the_hnsw_index_on_a_real_sized_gallery():
    # On a small gallery a sequential scan is cheaper (and exact): at ef_search = 100 PostgreSQL
    # switches to the index somewhere between 2,000 and 5,000 embeddings. With five thousand of one
    # model and fresh statistics, both steps (nearest person, then runner-up) must walk the HNSW index.
    _crowd(5000, seed=5)
    enroll_vector(make_person("Dana"), unit(42))
    _analyze()
    vec = search._vector_text(unit(41))
    params = {"q": vec, "model_name": "fake", "model_version": "1"}
    with connection.cursor() as cursor:
        cursor.execute(search.search_settings_sql(), [str(search.DEFAULT_EF_SEARCH)])
        cursor.execute("EXPLAIN " + search.nearest_sql(gallery.PEOPLE, 2), params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert plan.count("Index Scan using faceembedding_hnsw_l2") == 2, plan
    # And a real call does exactly those two index scans, with no sequential scan of the table.
    index_scans, seq_scans = _scans()
    people = gallery.nearest_people(unit(41), "fake", "1")
    assert len(people) == 2
    assert _scans() == (index_scans + 2, seq_scans)


def test_runner_up_is_found_past_hundreds_of_nearer_photos_of_the_nearest_person(monkeypatch):
    # Alice has 600 photos, every one nearer the probe than anyone else's: far more than ef_search, so
    # only the iterative scan of the second step (person_id <> Alice) can reach Bob.
    probe = unit(50)
    _crowd(400, seed=51)
    alice, bob = make_person("Alice"), make_person("Bob")
    _bulk_enroll(alice, np.stack([near(probe, 0.2 + i * 0.0005, seed=1000 + i) for i in range(600)]))
    enroll_vector(bob, near(probe, 0.9, seed=52))
    with connection.cursor() as cursor:
        # A gallery this small would be read whole and sorted (exact): force the HNSW walk under test.
        # SET LOCAL lasts until the test's transaction ends; the search's savepoint inherits it.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
    monkeypatch.setattr(search, "_exact", lambda *a: pytest.fail("fell back to the exact search"))
    index_scans, seq_scans = _scans()
    (m,) = gallery.identify([probe], "fake", "1")
    assert _scans() == (index_scans + 2, seq_scans)  # answered by the two HNSW scans alone
    assert m.nearest.identity_id == alice.pk and m.nearest.distance == pytest.approx(0.2, abs=1e-4)
    assert m.runner_up.identity_id == bob.pk and m.runner_up.distance == pytest.approx(0.9, abs=1e-4)
    monkeypatch.undo()
    exact = gallery.nearest_people(probe, "fake", "1", exact=True)
    assert [p.identity_id for p in exact] == [alice.pk, bob.pk]
    assert [p.distance for p in exact] == pytest.approx([m.nearest.distance, m.runner_up.distance], abs=1e-5)


def test_search_settings_do_not_leak_into_the_callers_transaction():
    # The test runs inside a transaction, like any caller already in an atomic block.
    enroll_vector(make_person("Alice"), unit(60))

    def settings() -> tuple:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan'), "
                "current_setting('enable_indexscan')"
            )
            return cursor.fetchone()

    before = settings()
    assert gallery.nearest_people(unit(61), "fake", "1", ef_search=123)
    assert gallery.nearest_people(unit(61), "fake", "1", exact=True)
    assert settings() == before and before[0] != "123"


def test_no_embedding_means_no_match():
    assert gallery.identify([None], "fake", "1")[0].nearest is None


def test_wrong_dimension_is_refused():
    with pytest.raises(ValueError, match="128-d"):
        gallery.nearest_people(np.ones(64, np.float32), "fake", "1")
