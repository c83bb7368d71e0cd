"""Door webhooks with one receiver that never answers (issue 17, item 4): another camera's delivery lag.

    .venv/bin/python bench/webhook_bench.py            # starts its own `make run` runner on a temp data dir

Starts `make run`'s runner (bench/own_runner.py: PostgreSQL, Redis, the engine worker, the threaded I/O worker that
delivers webhooks, the web server) on a temp data dir, with ``FACEACCESS_WEBHOOK_ALLOW=127.0.0.1/32`` so that its
worker may post to this script's two receivers on loopback: a good one (answers 204 at once) and a silent one
(accepts the connection, reads the request, never answers). Then, through the runner's own database and broker
(Django in this process, on the runner's data dir and ports), it makes two cameras' decided events and queues their
deliveries exactly as the door's step does (``faceaccess.jobs.send("access.tasks.deliver_webhook", id)``):

1. ``alone``: the good camera's ``--deliveries`` events, ``--interval`` s apart;
2. ``silent``: a burst of ``--burst`` events for the silent receiver's camera first, then the good camera's
   ``--deliveries`` events ``--interval`` s apart, with one more silent-receiver event after every second one.

The lag of a delivery is from queuing it to the good receiver having its request (both measured here). Prints p50 /
p95 / max per phase, and how many connections the silent receiver had open at once; writes ``--json``.

    .venv/bin/python bench/webhook_bench.py --compare 88ec5ea^   # before (that revision) and after, in one run

``--compare REV`` runs the same measurement twice, each in a child process: first on a copy of revision REV
(``git archive``, with this script, own_runner.py and faceaccess/http_client.py copied in: the script only queues
tasks by name and reads the ORM), then on this tree, and prints both side by side. 88ec5ea^ is main just before
the per-receiver slots and short timeouts of issue 17.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

from own_runner import REPO, OwnRunner, tree_of

from faceaccess.http_client import RecordingReceiver, SilentReceiver

sys.path.insert(0, str(REPO))  # this tree's code, even when another checkout is the one installed


def arrivals(receiver: RecordingReceiver) -> dict[int, float]:
    """When each event's webhook arrived (the last delivery of it)."""
    return {json.loads(r.body)["event"]: r.at for r in receiver.requests}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


def compare(args: argparse.Namespace) -> None:
    """``--compare REV``: this measurement on a copy of REV, then on this tree (each in a child process whose
    PYTHONPATH names its tree first), and the two side by side."""
    import shutil
    import subprocess

    old = tree_of(args.compare)
    try:
        for name in ("bench/webhook_bench.py", "bench/own_runner.py", "faceaccess/http_client.py"):
            shutil.copy(REPO / name, old / name)
        results = {}
        for label, tree in (("before", old), ("after", REPO)):
            out = args.json.with_name(f"{args.json.stem}_{label}.json")
            argv = [sys.executable, str(tree / "bench" / "webhook_bench.py"), "--json", str(out),
                    "--deliveries", str(args.deliveries), "--interval", str(args.interval),
                    "--burst", str(args.burst), "--drain", str(args.drain)]
            print(f"--- {label}: {tree}", flush=True)
            subprocess.run(argv, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, check=True)
            results[label] = json.loads(out.read_text())
    finally:
        shutil.rmtree(old, ignore_errors=True)
    print("\n| code | phase | arrived | another camera's webhook p50 / p95 / max ms | silent receiver: "
          "connections (most at once) |\n|---|---|---|---|---|")
    for label, result in results.items():
        code = args.compare if label == "before" else "this tree"
        for row in result["phases"]:
            silent = f"{row['silent_connections']} ({row['silent_most_open_at_once']})"
            print(f"| {label} ({code}) | {row['phase']} | {row['arrived']}/{row['deliveries']} | {row['p50_ms']} / "
                  f"{row['p95_ms']} / {row['max_ms']} | {silent} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"compare": args.compare, **results}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=40, help="good-camera deliveries per phase")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between the good camera's events")
    parser.add_argument("--burst", type=int, default=8, help="silent-receiver events queued before the phase")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for the last deliveries")
    parser.add_argument("--json", type=Path, default=REPO / "out" / "webhook_bench.json")
    parser.add_argument("--compare", metavar="REV", help="measure revision REV first, then this tree, in one run")
    args = parser.parse_args()
    if args.compare:
        compare(args)
        return

    good, silent = RecordingReceiver(), SilentReceiver()
    os.environ["FACEACCESS_WEBHOOK_ALLOW"] = "127.0.0.1/32"  # the runner's workers may post to loopback
    runner = OwnRunner(8, prefix="faceaccess-webhook-bench-")
    print(f"starting FaceAccess from {REPO} (log {runner.log}) ...", flush=True)
    try:
        runner.wait_up()
        for name in ("FACEACCESS_DATA_DIR", "FACEACCESS_PG_PORT", "FACEACCESS_REDIS_PORT"):
            os.environ[name] = runner.env[name]
        for name in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT"):
            os.environ.pop(name, None)
        os.environ["DJANGO_SETTINGS_MODULE"] = "faceaccess.settings"
        import django

        django.setup()
        from django.conf import settings
        from django.utils import timezone

        from access.models import AccessEvent, Camera, Site
        from faceaccess.jobs import send

        site = Site.objects.create(name="webhook bench")
        cameras = {}
        for name, url in (("good", good.url), ("silent", silent.url)):
            camera = Camera(site=site, name=name, webhook_url=url)
            camera.set_new_key()
            camera.save()
            cameras[name] = camera

        def queue(name: str) -> tuple[int, float]:
            now = timezone.now()
            event = AccessEvent.objects.create(camera=cameras[name], site=site, received_at=now, processed_at=now,
                                               status="done", decision="granted")
            at = time.monotonic()
            send("access.tasks.deliver_webhook", event.pk)
            return event.pk, at

        phases = []
        for phase in ("alone", "silent"):
            if phase == "silent":
                for _ in range(args.burst):
                    queue("silent")
            sent: dict[int, float] = {}
            for i in range(args.deliveries):
                pk, at = queue("good")
                sent[pk] = at
                if phase == "silent" and i % 2:
                    queue("silent")
                time.sleep(args.interval)
            deadline = time.monotonic() + args.drain
            while not set(sent) <= set(arrivals(good)) and time.monotonic() < deadline:
                time.sleep(0.1)
            arrived = arrivals(good)
            lags = [arrived[pk] - at for pk, at in sent.items() if pk in arrived]
            row = {"phase": phase, "deliveries": len(sent), "arrived": len(lags),
                   "p50_ms": round(percentile(lags, 0.5) * 1000), "p95_ms": round(percentile(lags, 0.95) * 1000),
                   "max_ms": round(max(lags) * 1000) if lags else None,
                   "silent_connections": silent.accepted, "silent_most_open_at_once": silent.most_open}
            phases.append(row)
            print(f"{phase:>7}: {row['arrived']}/{row['deliveries']} arrived, another camera's webhook p50 "
                  f"{row['p50_ms']} ms, p95 {row['p95_ms']} ms, max {row['max_ms']} ms; silent receiver: "
                  f"{silent.accepted} connections, at most {silent.most_open} at once", flush=True)
        knobs = {k: getattr(settings, k, None) for k in (
            "FACEACCESS_WEBHOOK_TIMEOUT", "FACEACCESS_WEBHOOK_CONNECT_TIMEOUT", "FACEACCESS_WEBHOOK_PER_RECEIVER",
            "FACEACCESS_WEBHOOK_RETRIES")}
        result = {"repo": str(REPO), "machine": platform.platform(), "load_average": os.getloadavg(),
                  "settings": knobs, "args": {k: str(v) for k, v in vars(args).items()}, "phases": phases}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"load average {os.getloadavg()[0]:.1f}; settings {knobs}; written to {args.json}")
    finally:
        runner.stop()


if __name__ == "__main__":
    main()
