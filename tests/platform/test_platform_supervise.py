"""Issue 9, defect 12: `make run` restarts an embedded Redis or PostgreSQL that died, and a worker that stopped
taking messages.

The runner comes up on a temp data dir and free ports; its Redis and its PostgreSQL are killed with SIGKILL at once;
the runner says it restarts them, /healthz is back to 200, and a camera's snapshot posted afterwards is decided by
the worker. Then the engine worker is frozen (SIGSTOP: alive, consuming nothing, as Celery can be after a broker
outage) while a snapshot waits in its queue: the runner's watchdog restarts the worker and the snapshot is decided.
Then the restarted worker stays alive and answers but stops consuming (its consumer of the queue cancelled, Celery's
failure after some broker outages): the watchdog restarts it too. Ctrl-C still stops everything."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from faceaccess.embedded import free_port
from faceaccess.embedded.process import pid_alive
from faceaccess.http_client import Response, http, multipart

REPO = Path(__file__).resolve().parents[2]
LFW_PHOTO = REPO.parent / "shared" / "datasets" / "lfw" / "images" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"
START_TIMEOUT_S = 300

pytestmark = pytest.mark.slow


def snapshot_body(photo: bytes, idempotency_key: str) -> tuple[bytes, str]:
    return multipart({"idempotency_key": idempotency_key}, {"image": ("door.jpg", photo)})


def a_photo() -> bytes:
    if LFW_PHOTO.is_file():
        return LFW_PHOTO.read_bytes()
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (250, 250, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def wait_until(what: str, check, timeout: float, runner: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if runner.poll() is not None:
            pytest.fail(f"runner exited with {runner.returncode} waiting for {what}:\n{log.read_text()[-5000:]}")
        time.sleep(0.5)
    pytest.fail(f"no {what} after {timeout:.0f}s:\n{log.read_text(errors='replace')[-5000:]}")


def engine_worker_pid(runner_pid: int, data: Path) -> int:
    """The engine worker's main process: the runner's child whose command line names this data dir's beat file."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        queues = argv[argv.index(b"-Q") + 1].split(b",") if b"-Q" in argv[:-1] else []
        if ppid == runner_pid and b"gpu" in queues and str(data / "celerybeat-schedule").encode() in argv:
            return int(proc.name)
    raise AssertionError("no engine worker process found")


def test_the_runner_restarts_a_killed_redis_and_postgresql_and_a_stuck_worker_and_doors_work_again():
    tmp = Path(tempfile.mkdtemp(prefix="faceaccess-supervise-"))
    tmp.chmod(0o755)  # the unprivileged PostgreSQL account must reach the data dir
    data, port = tmp / "data", free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT")}
    env.update(FACEACCESS_DATA_DIR=str(data), FACEACCESS_PORT=str(port), FACEACCESS_PG_PORT=str(free_port()),
               FACEACCESS_REDIS_PORT=str(free_port()), FACEACCESS_WEB_THREADS="4",
               FACEACCESS_WORKER_STALL_SECONDS="8")
    base = f"http://127.0.0.1:{port}"
    log = tmp / "runner.log"
    with open(log, "wb") as out:
        runner = subprocess.Popen([sys.executable, "-m", "faceaccess.runner"], cwd=REPO, env=env,
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until("banner", lambda: "Press Ctrl-C to stop." in log.read_text(errors="replace"), START_TIMEOUT_S,
                   runner, log)
        manage = [sys.executable, "manage.py"]

        def run(*args: str) -> str:
            done = subprocess.run([*manage, *args], cwd=REPO, env=env, capture_output=True, text=True)
            assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-3000:])
            return done.stdout

        run("create_site", "HQ")
        key = run("create_camera", "HQ", "front door", "--key-only").strip().splitlines()[-1]

        redis_pid = int((data / "redis" / "redis.pid").read_text())
        pg_pid = int((data / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
        assert pid_alive(redis_pid) and pid_alive(pg_pid)
        os.kill(redis_pid, signal.SIGKILL)
        os.kill(pg_pid, signal.SIGKILL)

        wait_until("healthy /healthz", lambda: http("GET", f"{base}/healthz").status == 200, 120, runner, log)
        # /healthz can answer before the runner has printed its "restarted" line: wait for the lines too.
        wait_until("restart messages", lambda: all(f"{name} restarted on 127.0.0.1:" in log.read_text(errors="replace")
                                                   for name in ("Redis", "PostgreSQL")), 60, runner, log)
        output = log.read_text(errors="replace")
        for name in ("Redis", "PostgreSQL"):
            assert f"{name} exited unexpectedly (killed by SIGKILL); restarting it" in output, output[-3000:]
            assert f"{name} restarted on 127.0.0.1:" in output, output[-3000:]
        new_redis = int((data / "redis" / "redis.pid").read_text())
        new_pg = int((data / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
        assert new_redis != redis_pid and new_pg != pg_pid and pid_alive(new_redis) and pid_alive(new_pg)

        # A door after the restarts: posted, queued, decided by the worker.
        photo = a_photo()
        camera = {"Authorization": f"Api-Key {key}"}

        def post() -> Response:
            body, content_type = snapshot_body(photo, "after-restart")
            return http("POST", f"{base}/api/v1/snapshots/?wait=10", body, {**camera, "Content-Type": content_type})

        status, headers, event, _ = post()
        if status == 503:  # the broker connection was not back yet: retry as a camera would
            time.sleep(int(headers.get("Retry-After", "5")))
            status, headers, event, _ = post()
        assert status in (200, 202), (status, event)

        def decided(event_id: int):
            def check():
                got = http("GET", f"{base}/api/v1/events/{event_id}/", headers=camera).data
                return got if got.get("status") != "pending" else None

            return check

        final = event if status == 200 else wait_until("decision", decided(event["id"]), 240, runner, log)
        assert final["status"] == "done" and final["decision"] in ("unknown", "no_face"), final

        # The engine worker freezes: its process is there, its queue is not consumed. The first snapshot goes to
        # the frozen worker's pending BRPOP (out of the list, into its socket); the second waits in the queue.
        worker_pid = engine_worker_pid(runner.pid, data)
        os.kill(worker_pid, signal.SIGSTOP)
        frozen = []
        for n in range(2):
            body, content_type = snapshot_body(photo, f"while-frozen-{n}")
            status, _, event, _ = http("POST", f"{base}/api/v1/snapshots/?wait=1", body,
                                       {**camera, "Content-Type": content_type})
            assert status == 202 and event["status"] == "pending", (status, event)
            frozen.append(event)
        for event in frozen:
            final = wait_until("decision after the watchdog's restart", decided(event["id"]), 240, runner, log)
            # "expired": processed, but later than the site's 30 s deadline (a loaded machine); either way only a
            # working worker can have written it, and the frozen one never thaws unless the runner restarts it.
            assert final["status"] in ("done", "expired"), (final.get("status"), final.get("reason"),
                                                             log.read_text(errors="replace")[-4000:])
        output = log.read_text(errors="replace")
        assert "Celery worker: the oldest message in queue 'gpu' has waited" in output, output[-3000:]
        assert "did not answer: it has stopped taking messages" in output, output[-3000:]
        assert "Celery worker restarted (1 restart since start-up)" in output, output[-3000:]
        assert not pid_alive(worker_pid)

        # What Celery really does after some broker outages: the worker is alive and answers its control
        # channel, but consumes nothing. Made here by cancelling the restarted worker's consumer of "gpu".
        node = f"faceaccess@{socket.gethostname()}"
        wait_until("the restarted worker", lambda: log.read_text(errors="replace").count(f"{node} ready.") >= 2,
                   240, runner, log)
        worker_pid = engine_worker_pid(runner.pid, data)
        worker_env = dict(line.split("=", 1) for line in Path(f"/proc/{worker_pid}/environ").read_text().split("\0")
                          if "=" in line)
        cancelled = subprocess.run([sys.executable, "-m", "celery", "-A", "faceaccess", "control", "cancel_consumer",
                                    "gpu", "-d", node], cwd=REPO, env=worker_env, capture_output=True, text=True)
        assert "no longer consuming from gpu" in cancelled.stdout, (cancelled.stdout, cancelled.stderr[-2000:])
        body, content_type = snapshot_body(photo, "while-idle")
        status, _, event, _ = http("POST", f"{base}/api/v1/snapshots/?wait=1", body,
                                   {**camera, "Content-Type": content_type})
        assert status == 202 and event["status"] == "pending", (status, event)
        final = wait_until("decision after the second restart", decided(event["id"]), 240, runner, log)
        assert final["status"] in ("done", "expired"), (final.get("status"), final.get("reason"))
        output = log.read_text(errors="replace")
        assert "is idle: it has stopped taking messages" in output, output[-3000:]
        assert "Celery worker restarted (2 restarts since start-up)" in output, output[-3000:]
        assert pid_alive(engine_worker_pid(runner.pid, data))
        print("".join(line for line in output.splitlines(keepends=True) if "restart" in line), final["decision"])
    finally:
        runner.send_signal(signal.SIGINT)
        code = runner.wait(120)
    assert code == 0, log.read_text(errors="replace")[-3000:]
    shutil.rmtree(tmp, ignore_errors=True)
