"""Workers that stay useful: the runner's watchdog rule (faceaccess/watchdog.py), without servers: a worker is
restarted only when the same message has stayed oldest in its queue for the stall time and the worker does not say
it is running a task; and the workers' quick reconnection to the broker (faceaccess/worker_consumer.py)."""

from __future__ import annotations

from faceaccess.watchdog import QueueWatch, Watchdog, worker_busy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(oldest: list, busy: list, stall_after: float = 30.0):
    clock, restarts = Clock(), []

    def next_oldest(queue: str):
        value = oldest.pop(0) if len(oldest) > 1 else oldest[0]
        if isinstance(value, Exception):
            raise value
        return value

    dog = Watchdog(watch=QueueWatch("gpu", stall_after), node_prefix="faceaccess@", restart=restarts.append,
                   oldest=next_oldest, busy=lambda prefix: busy[0], every=5.0, clock=clock)
    return dog, clock, restarts


def run_for(dog: Watchdog, clock: Clock, seconds: float, step: float = 1.0) -> None:
    end = clock.now + seconds
    while clock.now < end:
        dog.check()
        clock.now += step


def test_a_message_that_never_moves_with_an_idle_worker_restarts_it_once_per_stall():
    dog, clock, restarts = make([b"m1"], busy=[False])
    run_for(dog, clock, 29)
    assert restarts == []
    run_for(dog, clock, 6)
    assert len(restarts) == 1 and "'gpu'" in restarts[0] and "is idle" in restarts[0]
    run_for(dog, clock, 20)  # the restarted worker gets the full stall time again
    assert len(restarts) == 1
    run_for(dog, clock, 20)
    assert len(restarts) == 2


def test_a_worker_that_does_not_answer_counts_as_stuck():
    dog, clock, restarts = make([b"m1"], busy=[None])
    run_for(dog, clock, 40)
    assert len(restarts) == 1 and "did not answer" in restarts[0]


def test_a_queue_that_moves_or_is_empty_is_never_a_stall():
    moving = [f"m{i}".encode() for i in range(100)]
    dog, clock, restarts = make(moving, busy=[None])
    run_for(dog, clock, 300)
    assert restarts == []
    dog, clock, restarts = make([None], busy=[None])
    run_for(dog, clock, 300)
    assert restarts == []


def test_a_busy_worker_is_left_alone_and_restarted_once_it_is_idle_and_still_stuck():
    busy = [True]
    dog, clock, restarts = make([b"m1"], busy=busy)
    run_for(dog, clock, 200)
    assert restarts == []
    busy[0] = False
    run_for(dog, clock, 6)
    assert len(restarts) == 1


def test_a_broker_that_does_not_answer_resets_the_count_instead_of_blaming_the_worker():
    outage = [b"m1"] * 5 + [ConnectionError("frozen")] * 10 + [b"m1"]
    dog, clock, restarts = make(outage, busy=[False])
    run_for(dog, clock, 25 + 50)  # 25 s seen, then 50 s of outage
    assert restarts == []
    run_for(dog, clock, 25)  # the count starts again after the outage
    assert restarts == []
    run_for(dog, clock, 10)
    assert len(restarts) == 1


class FakeInspect:
    def __init__(self, replies) -> None:
        self.replies = replies

    def active(self):
        return self.replies


class FakeApp:
    def __init__(self, replies) -> None:
        self.control = self
        self.replies = replies

    def inspect(self, timeout: float):
        return FakeInspect(self.replies)


def test_worker_busy_reads_only_the_named_worker():
    assert worker_busy(FakeApp(None), "faceaccess@") is None
    assert worker_busy(FakeApp({"io@h": [{"id": "x"}]}), "faceaccess@") is None
    assert worker_busy(FakeApp({"faceaccess@h": [], "io@h": [{"id": "x"}]}), "faceaccess@") is False
    assert worker_busy(FakeApp({"faceaccess@h": [{"id": "t"}]}), "faceaccess@") is True


def test_workers_reconnect_to_the_broker_every_two_seconds_at_most_and_never_give_up():
    from django.conf import settings

    from faceaccess.celery import app
    from faceaccess.worker_consumer import QuickReconnectConsumer

    assert app.conf.worker_consumer == "faceaccess.worker_consumer:QuickReconnectConsumer"
    assert app.conf.broker_connection_max_retries is None and settings.CELERY_BROKER_CONNECTION_MAX_RETRIES is None

    class Conn:
        alt = None

        def __init__(self):
            self.calls = []

        def ensure_connection(self, *args, **kwargs):
            self.calls.append(kwargs)
            return self

        def as_uri(self):
            return "redis://test"

    consumer = QuickReconnectConsumer.__new__(QuickReconnectConsumer)  # no worker needed for the wrapper
    consumer.app, consumer.first_connection_attempt, consumer.broker_connection_retry_attempt = app, False, 0
    conn = Conn()
    consumer.ensure_connected(conn)
    (kwargs,) = conn.calls
    assert (kwargs["interval_start"], kwargs["interval_step"], kwargs["interval_max"]) == (0.5, 0.5, 2.0)


def test_the_runner_restarts_a_child_that_exits_and_gives_up_when_it_keeps_exiting(capsys):
    import sys
    import time

    import pytest

    from faceaccess.embedded import ServiceError
    from faceaccess.runner import Child

    child = Child("short-lived", [sys.executable, "-c", "raise SystemExit(3)"], {}, grace=1.0)
    child.start()
    restarts = 0
    with pytest.raises(ServiceError, match=r"short-lived exited 5 times within 120 s \(last: exit code 3\)"):
        for _ in range(200):
            child.proc.wait(10)
            child.check()
            restarts = child.restarts
            time.sleep(0.01)
    assert restarts == 4
    out = capsys.readouterr().out
    assert "short-lived: exited unexpectedly (exit code 3); restarting it" in out
    assert "short-lived restarted (4 restarts since start-up)" in out

    alive = Child("long-lived", [sys.executable, "-c", "import time; time.sleep(60)"], {}, grace=1.0)
    alive.start()
    try:
        alive.check()
        assert alive.restarts == 0 and alive.proc.poll() is None
    finally:
        alive.stop()
    assert alive.proc.poll() is not None
