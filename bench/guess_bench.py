"""Doors during a password-guessing attack (issue 9, defect 5): one camera's latency with and without guessers.

    .venv/bin/python bench/guess_bench.py                  # starts its own `make run` runner on a temp data dir
    .venv/bin/python bench/guess_bench.py --base http://127.0.0.1:8000 --camera-key fa_... --username admin

Phases, each ``--seconds`` long: the camera alone; then the camera while ``--guessers`` guessers post wrong
passwords for the admin account to ``POST /api/v1/auth/token/``, once per phase of ``--guess-intervals``
(seconds between one guesser's guesses; 0 = the next guess as soon as the answer came). The camera posts LFW
photos (``--lfw``) one after the other with ``?wait=10``, ``--camera-interval`` seconds apart, after
``--warmup`` unrecorded posts; ``--rounds`` repeats the phases, alternating. Reports the camera's p50/p95/max
(client side: from sending the request to reading the whole answer), what the guesses got and the web process's
CPU seconds per second, printed and written to ``--json``.

Only 127.0.0.1 / localhost / ::1 are accepted as the server: a benchmark of this machine, not a load generator.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from pathlib import Path

from own_runner import REPO, TIMEOUT, OwnRunner, web_pids

from faceaccess.http_client import http, multipart

LOCAL = {"127.0.0.1", "localhost", "::1"}


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


class GuessRunner(OwnRunner):
    """The runner, plus a camera to post with."""

    def camera_key(self) -> str:
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "create_site", "Bench", "--exist-ok"], cwd=REPO, env=self.env, check=True,
                       capture_output=True)
        out = subprocess.run([*manage, "create_camera", "Bench", f"door-{uuid.uuid4().hex[:6]}", "--key-only"],
                             cwd=REPO, env=self.env, check=True, capture_output=True, text=True).stdout
        return out.strip().splitlines()[-1]


def camera_loop(base: str, key: str, photos: list[Path], interval: float, stop: threading.Event,
                out: list[float], statuses: Counter, start_at: int = 0) -> None:
    url = f"{base}/api/v1/snapshots/?wait=10"
    i = start_at
    while not stop.is_set():
        path = photos[i % len(photos)]
        i += 1
        body, content_type = multipart({}, {"image": (path.name, path.read_bytes())})
        started = time.monotonic()
        status = http("POST", url, body, {"Authorization": f"Api-Key {key}", "Content-Type": content_type},
                      TIMEOUT).status
        out.append(time.monotonic() - started)
        statuses[status] += 1
        stop.wait(interval)


def guesser_loop(base: str, username: str, interval: float, stop: threading.Event, statuses: Counter,
                 times: list[float]) -> None:
    url = f"{base}/api/v1/auth/token/"
    while not stop.is_set():
        body = urllib.parse.urlencode({"username": username, "password": secrets.token_urlsafe(9)}).encode()
        started = time.monotonic()
        status, _, data, _ = http("POST", url, body, {"Content-Type": "application/x-www-form-urlencoded"}, TIMEOUT)
        took = time.monotonic() - started
        times.append(took)
        statuses[f"{status} {data.get('error', '')}".strip()] += 1
        if interval:
            stop.wait(max(0.0, interval - took))


class Phase:
    """One kind of phase (the camera alone, or with guessers at one pace), over all its rounds."""

    def __init__(self, guess_interval: float | None, guessers: int) -> None:
        self.guess_interval = guess_interval
        self.name = "camera alone" if guess_interval is None else (
            f"+ {guessers} guessers, " + (f"1 guess / {guess_interval:g} s each" if guess_interval else "flat out"))
        self.latencies: list[float] = []
        self.camera_statuses: Counter = Counter()
        self.guess_statuses: Counter = Counter()
        self.guess_times: list[float] = []
        self.seconds = 0.0
        self.web_cpu = 0.0

    def summary(self) -> dict:
        lat, guesses = self.latencies, sum(self.guess_statuses.values())
        return {
            "phase": self.name,
            "camera_posts": len(lat),
            "camera_statuses": dict(self.camera_statuses),
            "p50_ms": round(1000 * percentile(lat, 50), 1) if lat else None,
            "p95_ms": round(1000 * percentile(lat, 95), 1) if lat else None,
            "max_ms": round(1000 * max(lat), 1) if lat else None,
            "guesses": guesses,
            "guesses_per_s": round(guesses / self.seconds, 1) if self.seconds else 0.0,
            "guess_answers": dict(self.guess_statuses),
            "guess_p50_ms": round(1000 * percentile(self.guess_times, 50), 1) if self.guess_times else None,
            "web_cpu_s_per_s": round(self.web_cpu / self.seconds, 3) if self.seconds else None,
        }


def run_phase(args, key: str, photos: list[Path], phase: Phase, offset: int) -> None:
    stop = threading.Event()
    guess_interval = phase.guess_interval
    latencies, camera_statuses = phase.latencies, phase.camera_statuses
    guess_statuses, guess_times = phase.guess_statuses, phase.guess_times
    threads = [threading.Thread(target=camera_loop, args=(args.base, key, photos, args.camera_interval, stop,
                                                          latencies, camera_statuses, offset))]
    if guess_interval is not None:
        threads += [threading.Thread(target=guesser_loop, args=(args.base, args.username, guess_interval, stop,
                                                                guess_statuses, guess_times))
                    for _ in range(args.guessers)]
    cpu_before = cpu_seconds(args.web_pid)
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    phase.web_cpu += cpu_seconds(args.web_pid) - cpu_before
    phase.seconds += args.seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="a running FaceAccess (default: start one on a temp data dir)")
    parser.add_argument("--camera-key", help="with --base: an active camera's key")
    parser.add_argument("--username", default="admin", help="the account the guessers attack")
    parser.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "datasets" / "lfw" / "images")
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the phases this many times, alternating (evens out a machine's changing load)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--guessers", type=int, default=8)
    parser.add_argument("--guess-intervals", default="1,0", help="one guessing phase per value (0 = flat out)")
    parser.add_argument("--camera-interval", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=16, help="web threads of the runner this bench starts")
    parser.add_argument("--label", default="", help="a note stored with the results (e.g. the commit)")
    parser.add_argument("--web-pid", type=int, help="with --base: the web server's pid, to report its CPU use")
    parser.add_argument("--json", type=Path, default=REPO / "out" / "guess_bench.json")
    args = parser.parse_args(argv)

    photos = sorted(args.lfw.glob("*/*.jpg"))[: args.photos]
    if not photos:
        raise SystemExit(f"no LFW photos under {args.lfw}")
    sys.path.insert(0, str(REPO))
    runner = None
    if args.base:
        if urllib.parse.urlsplit(args.base).hostname not in LOCAL:
            raise SystemExit("only a server on this machine (127.0.0.1, localhost, ::1) is accepted")
        if not args.camera_key:
            raise SystemExit("--base needs --camera-key")
        key = args.camera_key
    else:
        runner = GuessRunner(args.threads, prefix="faceaccess-guess-bench-")
        print(f"starting FaceAccess (log {runner.log}) ...", flush=True)
        runner.wait_up()
        args.base = runner.base
        args.web_pid = next(iter(web_pids(runner.proc.pid)), None)
        key = runner.camera_key()
    try:
        for i in range(args.warmup):
            path = photos[i % len(photos)]
            body, content_type = multipart({}, {"image": (path.name, path.read_bytes())})
            http("POST", f"{args.base}/api/v1/snapshots/?wait=10", body,
                 {"Authorization": f"Api-Key {key}", "Content-Type": content_type}, TIMEOUT)
        kinds = [Phase(None, args.guessers)] + [
            Phase(float(value), args.guessers) for value in re.split(r"\s*,\s*", args.guess_intervals.strip())]
        for r in range(args.rounds):
            for n, kind in enumerate(kinds):
                print(f"round {r + 1}/{args.rounds}: {kind.name}", flush=True)
                run_phase(args, key, photos, kind, 1000 * n + 100 * r)
        phases = [kind.summary() for kind in kinds]
    finally:
        if runner is not None:
            runner.stop()

    print(f"\n{'phase':<40} {'posts':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'guesses/s':>9} "
          f"{'web CPU':>7}  guess answers")
    for p in phases:
        print(f"{p['phase']:<40} {p['camera_posts']:>5} {p['p50_ms']:>8} {p['p95_ms']:>8} {p['max_ms']:>8} "
              f"{p['guesses_per_s']:>9} {p['web_cpu_s_per_s']!s:>7}  {p['guess_answers']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "label": args.label, "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_end": os.getloadavg(), "seconds_per_phase": args.seconds, "rounds": args.rounds,
        "camera_interval_s": args.camera_interval, "phases": phases,
    }, indent=2) + "\n")
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
