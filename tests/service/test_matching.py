"""Nearest-person search in the real PostgreSQL with pgvector."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from recognition import matching

from .conftest import enroll_vector, make_person, near, unit

pytestmark = pytest.mark.django_db


def test_nearest_person_and_runner_up():
    probe = unit(1)
    alice, bob, carol = make_person("Alice"), make_person("Bob"), make_person("Carol")
    enroll_vector(alice, near(probe, 0.40, seed=2))
    enroll_vector(bob, near(probe, 0.80, seed=3))
    enroll_vector(carol, near(probe, 1.20, seed=4))
    (m,) = matching.identify([probe], "fake", "1")
    assert m.nearest.person_id == alice.pk and m.nearest.distance == pytest.approx(0.40, abs=1e-4)
    assert m.runner_up.person_id == bob.pk and m.runner_up.distance == pytest.approx(0.80, abs=1e-4)


def test_a_persons_distance_is_the_minimum_over_their_embeddings():
    probe = unit(10)
    alice, bob = make_person("Alice"), make_person("Bob")
    enroll_vector(alice, near(probe, 1.1, seed=11))
    enroll_vector(alice, near(probe, 0.3, seed=12))
    enroll_vector(bob, near(probe, 0.5, seed=13))
    people = matching.nearest_people(probe, "fake", "1", k=2)
    assert [p.person_id for p in people] == [alice.pk, bob.pk]
    assert people[0].distance == pytest.approx(0.3, abs=1e-4)


def test_embeddings_of_other_models_are_never_compared():
    probe = unit(20)
    alice, bob = make_person("Alice"), make_person("Bob")
    enroll_vector(alice, probe, model=("other", "1"))  # identical vector, other model
    enroll_vector(alice, near(probe, 0.2, seed=21), model=("fake", "2"))  # same name, other version
    enroll_vector(bob, near(probe, 0.9, seed=22))
    (m,) = matching.identify([probe], "fake", "1")
    assert (m.nearest.person_id, m.runner_up) == (bob.pk, None)
    assert matching.identify([probe], "nobody", "0")[0].nearest is None


def test_runner_up_found_past_a_person_with_many_close_embeddings():
    # Alice's 40 photos are all nearer than Bob's one: the first window holds only Alice.
    probe = unit(30)
    alice, bob = make_person("Alice"), make_person("Bob")
    for i in range(40):
        enroll_vector(alice, near(probe, 0.2 + i * 0.005, seed=100 + i))
    enroll_vector(bob, near(probe, 0.9, seed=31))
    (m,) = matching.identify([probe], "fake", "1")
    assert m.nearest.person_id == alice.pk
    assert m.runner_up.person_id == bob.pk and m.runner_up.distance == pytest.approx(0.9, abs=1e-4)


def test_hnsw_agrees_with_exact_search():
    rng = np.random.default_rng(0)
    people = [make_person(f"P{i}") for i in range(30)]
    for i, person in enumerate(people):
        for j in range(3):
            enroll_vector(person, unit(1000 + 10 * i + j))
    for _ in range(20):
        probe = rng.standard_normal(128).astype(np.float32)
        probe /= np.linalg.norm(probe)
        fast = matching.nearest_people(probe, "fake", "1", k=2)
        exact = matching.nearest_people(probe, "fake", "1", k=2, exact=True)
        assert [p.person_id for p in fast] == [p.person_id for p in exact]
        assert [p.distance for p in fast] == pytest.approx([p.distance for p in exact], abs=1e-5)


def test_the_planner_walks_the_hnsw_index_on_a_real_sized_gallery():
    # On a handful of rows a scan is cheaper; with two thousand embeddings of one model and fresh
    # statistics, the nearest-embeddings query must use the HNSW index.
    from django.core.files.base import ContentFile

    from enrollment.models import FaceEmbedding, FaceImage

    person = make_person("Crowd")
    face = FaceImage(person=person)
    face.image.save("crowd.png", ContentFile(b"x"), save=False)
    face.save()
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((2000, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    faces = FaceImage.objects.bulk_create([FaceImage(person=person, image=face.image.name) for _ in vectors])
    FaceEmbedding.objects.bulk_create(
        FaceEmbedding(person=person, face_image=f, embedding=v.tolist(), model_name="fake", model_version="1")
        for f, v in zip(faces, vectors, strict=True)
    )
    vec = matching._vector_text(unit(41))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE enrollment_faceembedding")
        cursor.execute("EXPLAIN " + matching.nearest_sql(), [vec, "fake", "1", vec, 16])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using embedding_hnsw_l2" in plan, plan


def test_no_embedding_means_no_match():
    assert matching.identify([None], "fake", "1")[0].nearest is None


def test_wrong_dimension_is_refused():
    with pytest.raises(ValueError, match="128-d"):
        matching.nearest_people(np.ones(64, np.float32), "fake", "1")
