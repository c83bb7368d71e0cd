"""Issue 10: the batching worker. Snapshots that concurrent tasks of one worker process hand to the engine share
one engine call (one detector pass, one embedder pass); each keeps its own faces, decision and failure: a bad
image never fails its batch-mates; a lone snapshot never waits; batch size 1 means one image per call."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone

from access.models import AccessEvent
from recognition.pipelines import EngineBatcher

from .conftest import enroll_vector, fake_face, image_bytes, make_person, near, unit


class CountingEngine:
    """Answers one face per image, named after the image's first pixel; counts its calls and their sizes."""

    embedder_name, embedder_version = "fake", "1"

    def __init__(self, delay: float = 0.0, poison: int | None = None):
        self.delay, self.poison = delay, poison
        self.calls: list[int] = []
        self.policies: list[object] = []
        self.inside = 0
        self.most_inside = 0
        self.lock = threading.Lock()

    def faces(self, images, embed=True, return_crops=False, flip_tta=False, detection=None):
        with self.lock:
            self.calls.append(len(images))
            self.policies.append(detection)
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            if self.poison is not None and any(int(im[0, 0, 0]) == self.poison for im in images):
                raise ValueError("this image breaks the engine")
            time.sleep(self.delay)
            return [[f"face {int(im[0, 0, 0])}"] for im in images]
        finally:
            with self.lock:
                self.inside -= 1


def image(n: int) -> np.ndarray:
    return np.full((8, 8, 3), n, np.uint8)


def run_concurrently(batcher: EngineBatcher, numbers: list[int], withdraw: set[int] = frozenset(),
                     detection=lambda n: None) -> dict[int, object]:
    """One thread per number, each announced before any starts (as tasks that all arrived together)."""
    tickets = {n: batcher.ticket() for n in numbers}
    results: dict[int, object] = {}

    def task(n: int) -> None:
        with tickets[n] as ticket:
            if n in withdraw:  # e.g. its photo did not decode: it never reaches the engine
                results[n] = "withdrawn"
                return
            try:
                results[n] = ticket.faces(image(n), detection(n))[0]
            except Exception as exc:
                results[n] = exc

    threads = [threading.Thread(target=task, args=(n,)) for n in numbers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return results


def test_concurrent_snapshots_share_one_engine_call():
    engine = CountingEngine()
    batcher = EngineBatcher(8, 5.0, pipeline=lambda: engine)
    results = run_concurrently(batcher, [1, 2, 3, 4, 5, 6])
    assert engine.calls == [6]  # one detector pass and one embedder pass for all six
    assert results == {n: [f"face {n}"] for n in range(1, 7)}  # each got its own faces


def test_a_bad_image_fails_alone():
    engine = CountingEngine(poison=3)
    batcher = EngineBatcher(8, 5.0, pipeline=lambda: engine)
    results = run_concurrently(batcher, [1, 2, 3, 4, 5])
    assert isinstance(results[3], ValueError)
    assert {n: r for n, r in results.items() if n != 3} == {n: [f"face {n}"] for n in (1, 2, 4, 5)}
    assert engine.calls[0] == 5 and sorted(engine.calls[1:]) == [1] * 5  # the batch, then each image alone


def test_a_lone_snapshot_does_not_wait():
    engine = CountingEngine()
    batcher = EngineBatcher(16, 5.0, pipeline=lambda: engine)  # a 5 s gathering window it must not use
    started = time.monotonic()
    with batcher.ticket() as ticket:
        faces, timings = ticket.faces(image(7))
    assert faces == ["face 7"] and engine.calls == [1]
    assert time.monotonic() - started < 0.5
    assert timings["batch_size"] == 1 and timings["batch_wait"] < 100.0


def test_a_withdrawn_snapshot_does_not_hold_the_batch():
    engine = CountingEngine()
    batcher = EngineBatcher(8, 5.0, pipeline=lambda: engine)
    started = time.monotonic()
    results = run_concurrently(batcher, [1, 2, 3], withdraw={2})
    assert results == {1: ["face 1"], 2: "withdrawn", 3: ["face 3"]}
    assert time.monotonic() - started < 2.5  # far less than the 5 s window


def test_batch_size_one_runs_one_image_per_call_one_at_a_time():
    engine = CountingEngine(delay=0.01)
    batcher = EngineBatcher(1, 5.0, pipeline=lambda: engine)
    results = run_concurrently(batcher, [1, 2, 3, 4])
    assert engine.calls == [1, 1, 1, 1] and engine.most_inside == 1
    assert results == {n: [f"face {n}"] for n in range(1, 5)}


def test_batches_never_exceed_the_size_and_late_arrivals_form_the_next_batch():
    engine = CountingEngine(delay=0.02)
    batcher = EngineBatcher(4, 0.05, pipeline=lambda: engine)
    results = run_concurrently(batcher, list(range(1, 11)))
    assert max(engine.calls) <= 4 and sum(engine.calls) == 10 and len(engine.calls) < 10
    assert engine.most_inside == 1  # one engine call at a time per process
    assert results == {n: [f"face {n}"] for n in range(1, 11)}


def test_each_detection_policy_gets_its_own_call():
    engine = CountingEngine()
    batcher = EngineBatcher(8, 5.0, pipeline=lambda: engine)
    results = run_concurrently(batcher, [1, 2, 3, 4], detection=lambda n: "small_faces" if n % 2 else "standard")
    assert sorted(engine.calls) == [2, 2] and set(engine.policies) == {"small_faces", "standard"}
    assert results == {n: [f"face {n}"] for n in range(1, 5)}


# ---------------------------------------------------------------- the worker's tasks, on the database --------

def make_events(camera, site, plan: dict[str, bytes]) -> dict[str, int]:
    events = {}
    for name, data in plan.items():
        event = AccessEvent(camera=camera.camera, site=site, received_at=timezone.now())
        event.snapshot.save("snap.png", ContentFile(data), save=False)
        event.save()
        events[name] = event.pk
    return events


def process_together(events: dict[str, int], batcher: EngineBatcher, monkeypatch) -> dict[str, object]:
    """``process_snapshot`` for every event at once, one thread each (a threads-pool worker), all announced to
    the batcher before any starts: as if their messages arrived together."""
    from access.snapshots import processing

    tickets = [batcher.ticket() for _ in events]
    lock = threading.Lock()

    class Announced:
        def ticket(self):
            with lock:
                return tickets.pop()

    monkeypatch.setattr(processing, "batcher", Announced)
    outcomes: dict[str, object] = {}

    def task(name: str) -> None:
        try:
            outcomes[name] = processing.process_snapshot(events[name])
        except Exception as exc:
            outcomes[name] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=task, args=(name,)) for name in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


@pytest.fixture
def people(site):
    alice, bob = make_person("Alice", sites=[site]), make_person("Bob", sites=[site])
    enroll_vector(alice, unit(1))
    enroll_vector(bob, unit(2))
    return alice, bob


def counting(fake_pipeline, monkeypatch, breaks: tuple[int, int, int] | None = None) -> list[int]:
    real_faces = fake_pipeline.faces
    calls: list[int] = []

    def faces(images, **kwargs):
        calls.append(len(images))
        if breaks and any(tuple(int(c) for c in im[0, 0]) == breaks for im in images):
            raise RuntimeError("this photo breaks the engine")
        return real_faces(images, **kwargs)

    monkeypatch.setattr(fake_pipeline, "faces", faces)
    return calls


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("media")
def test_each_event_of_a_batch_gets_its_own_decision(fake_pipeline, site, camera, people, monkeypatch):
    alice, bob = people
    events = make_events(camera, site, {
        "alice": fake_pipeline.register((31, 1, 1), [fake_face(near(unit(1), 0.3, seed=1))]),
        "bob": fake_pipeline.register((32, 1, 1), [fake_face(near(unit(2), 0.3, seed=2))]),
        "stranger": fake_pipeline.register((33, 1, 1), [fake_face(unit(99))]),
        "nobody": fake_pipeline.register((34, 1, 1), []),
        "not an image": b"\x89PNG\r\n\x1a\n broken",
    })
    calls = counting(fake_pipeline, monkeypatch)
    outcomes = process_together(events, EngineBatcher(8, 5.0), monkeypatch)
    rows = {name: AccessEvent.objects.get(pk=pk) for name, pk in events.items()}
    assert (rows["alice"].decision, rows["alice"].person_id) == ("granted", alice.pk)
    assert (rows["bob"].decision, rows["bob"].person_id) == ("granted", bob.pk)
    assert (rows["stranger"].decision, rows["nobody"].decision) == ("unknown", "no_face")
    assert outcomes == {"alice": "granted", "bob": "granted", "stranger": "unknown", "nobody": "no_face",
                        "not an image": "failed"}
    # The photo that does not decode fails at once, without holding the others back.
    assert rows["not an image"].status == "failed" and rows["not an image"].reason.startswith("bad image")
    assert calls == [4]  # one engine call for the four others
    for name in ("alice", "bob", "stranger", "nobody"):
        assert rows[name].timings["batch_size"] == 4 and {"decode", "search", "save"} <= set(rows[name].timings)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("media")
def test_a_photo_that_breaks_the_engine_fails_alone(fake_pipeline, site, camera, people, monkeypatch):
    alice, bob = people
    events = make_events(camera, site, {
        "alice": fake_pipeline.register((41, 1, 1), [fake_face(near(unit(1), 0.3, seed=1))]),
        "bob": fake_pipeline.register((42, 1, 1), [fake_face(near(unit(2), 0.3, seed=2))]),
        "breaks the engine": image_bytes((43, 1, 1)),
        "stranger": fake_pipeline.register((44, 1, 1), [fake_face(unit(99))]),
    })
    calls = counting(fake_pipeline, monkeypatch, breaks=(43, 1, 1))
    outcomes = process_together(events, EngineBatcher(8, 5.0), monkeypatch)
    rows = {name: AccessEvent.objects.get(pk=pk) for name, pk in events.items()}
    assert (rows["alice"].decision, rows["alice"].person_id) == ("granted", alice.pk)
    assert (rows["bob"].decision, rows["bob"].person_id) == ("granted", bob.pk)
    assert rows["stranger"].decision == "unknown"
    bad = rows["breaks the engine"]
    assert bad.status == "failed" and "breaks the engine" in bad.reason
    assert isinstance(outcomes["breaks the engine"], RuntimeError)  # the task fails (Celery logs it), alone
    assert calls[0] == 4 and sorted(calls[1:]) == [1, 1, 1, 1], calls  # the batch, then each photo on its own
