"""Doors through broker and worker faults (issue 9, acceptance): nothing accepted is lost, nothing stays pending.

    .venv/bin/python bench/fault_bench.py            # starts its own `make run` runner on a temp data dir

Starts ``python -m faceaccess.runner`` on a temp data dir and free ports, enrolls ``--people`` LFW people (two
photos each) through the API, then ``--cameras`` cameras post LFW photos (other photos of those people and of
strangers), each with its own idempotency key and ``?wait=10``, ``--interval`` seconds after the previous answer.
A 503 is retried after its Retry-After with the same key (a request that got no answer at all, after 1 s), for at
most ``--give-up`` seconds. Meanwhile, after ``--calm`` seconds of normal traffic between faults:

1. Redis is stopped with SIGTERM and kept down ``--redis-down`` seconds (the runner, which would restart it at once,
   is paused with SIGSTOP meanwhile), then the runner is continued and restarts it (its own supervision);
2. Redis is frozen with SIGSTOP for ``--redis-frozen`` seconds, then continued;
3. the Celery worker's pool child (the process that runs the engine) is SIGKILLed, twice.

Then the cameras stop and every event the server stored is followed until it is final. Reports: snapshots posted,
accepted (answered 200/202), decided (``done``), failed (with their reasons), expired, lost (an event id the server
gave out that never reached a final state, or is missing), still pending ``--stuck-after`` seconds after the last
post (the sweeper re-queues after 60 s, every 30 s), and the longest request (must stay within wait + 2 s).
Printed and written to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from own_runner import REPO, TIMEOUT, OwnRunner, child_pids, command_line

from faceaccess.http_client import http, multipart

FINAL = ("done", "failed", "expired")
ENROLLED = ["Colin_Powell", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder"]
STRANGERS = ["Ariel_Sharon", "Hugo_Chavez", "Jean_Chretien", "John_Ashcroft"]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class FaultRunner(OwnRunner):
    """The runner, plus the processes the faults are aimed at."""

    def redis_pid(self) -> int:
        return int((self.data / "redis" / "redis.pid").read_text())

    def worker_pid(self) -> int:
        """The engine's Celery worker: the one consuming the "gpu" queue (the runner may start others)."""
        def queues(pid: int) -> list[str]:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            return argv[argv.index("-Q") + 1].split(",") if "-Q" in argv[:-1] else []

        pids = [p for p in child_pids(self.proc.pid) if " worker" in command_line(p) and "gpu" in queues(p)]
        if len(pids) != 1:
            raise RuntimeError(f"expected one Celery worker on the gpu queue under the runner, found {pids}")
        return pids[0]

    def pool_child(self) -> int:
        """The worker's pool process: the one that loaded the engine (beat, the worker's other child, is small)."""
        kids = child_pids(self.worker_pid())
        if not kids:
            raise RuntimeError("the Celery worker has no child process")
        return max(kids, key=rss_kb)


class Api:
    def __init__(self, base: str, auth: str) -> None:
        self.base, self.auth = base, auth

    def ok(self, method: str, path: str, body: dict | None = None, photo: Path | None = None) -> dict:
        headers = {"Authorization": self.auth, "Accept": "application/json"}
        data = None
        if photo is not None:
            data, headers["Content-Type"] = multipart({}, {"image": (photo.name, photo.read_bytes())})
        elif body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        status, _, got, _ = http(method, self.base + path if path.startswith("/") else path, data, headers, TIMEOUT)
        if status not in (200, 201, 202, 204):
            raise SystemExit(f"{method} {path} -> {status}: {got}")
        return got


class Record:
    """Everything the cameras saw: each request and each snapshot's outcome, by idempotency key."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.lock = threading.Lock()
        self.requests: list[dict] = []  # t (s since the cameras started), camera, key, status, error, seconds
        self.snapshots: dict[str, dict] = {}  # key -> {"id", "accepted", "attempts", "answer"}

    def request(self, **row) -> None:
        with self.lock:
            self.requests.append(row)


def camera_loop(cam: int, base: str, api_key: str, photos: list[Path], args, stop: threading.Event,
                rec: Record) -> None:
    url = f"{base}/api/v1/snapshots/?wait={args.wait:g}"
    i = 0
    while not stop.is_set():
        photo = photos[(cam * 7 + i) % len(photos)]
        key = f"cam{cam}-{i:05d}"
        i += 1
        snap = {"id": None, "accepted": False, "attempts": 0, "answer": None, "photo": photo.parent.name}
        with rec.lock:
            rec.snapshots[key] = snap
        first = time.monotonic()
        while True:
            body, content_type = multipart({"idempotency_key": key}, {"image": (photo.name, photo.read_bytes())})
            started = time.monotonic()
            status, headers, got, _ = http("POST", url, body, {"Authorization": f"Api-Key {api_key}",
                                                                "Content-Type": content_type}, timeout=args.wait + 30)
            took = time.monotonic() - started
            snap["attempts"] += 1
            error = got.get("error", "") if status not in (200, 202) else ""
            rec.request(t=round(started - rec.t0, 3), camera=cam, key=key, status=status, error=error,
                        seconds=round(took, 3))
            if isinstance(got.get("id"), int):
                snap["id"] = got["id"]
            if status in (200, 202):
                snap["accepted"], snap["answer"] = True, got.get("decision") or got.get("status")
                break
            snap["answer"] = f"{status} {error}".strip()
            if time.monotonic() - first > args.give_up:
                break  # a camera moves on; an event stored meanwhile is the sweeper's
            retry = float(headers.get("Retry-After") or 1) if status in (429, 503) else 1.0
            if stop.wait(retry) and time.monotonic() - first > args.give_up:
                break
        stop.wait(args.interval)


def events_by_id(api: Api, site_id: int) -> dict[int, dict]:
    out: dict[int, dict] = {}
    url = f"/api/v1/events/?site={site_id}&page_size=500"
    while url:
        page = api.ok("GET", url)
        for event in page["results"]:
            out[event["id"]] = event
        url = page.get("next")
    return out


def reason_kind(reason: str) -> str:
    return re.sub(r"\d+(\.\d+)?", "N", reason or "")[:160]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "datasets" / "lfw" / "images")
    parser.add_argument("--people", type=int, default=4, help="LFW people to enroll (two photos each)")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--wait", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a camera's snapshots")
    parser.add_argument("--give-up", type=float, default=60.0,
                        help="a camera stops retrying a snapshot this many seconds after its first try")
    parser.add_argument("--calm", type=float, default=20.0, help="normal traffic before and between faults")
    parser.add_argument("--redis-down", type=float, default=30.0)
    parser.add_argument("--redis-frozen", type=float, default=20.0)
    parser.add_argument("--worker-kills", type=int, default=2)
    parser.add_argument("--stuck-after", type=float, default=120.0,
                        help="count events still pending this long after the last post")
    parser.add_argument("--lost-after", type=float, default=300.0,
                        help="an event not final this long after the last post counts as lost")
    parser.add_argument("--threads", type=int, default=16, help="web threads of the runner")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir (and its logs)")
    parser.add_argument("--json", type=Path, default=REPO / "out" / "fault_bench.json")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    people = ENROLLED[: args.people]
    for name in people + STRANGERS:
        if len(list((args.lfw / name).glob("*.jpg"))) < 3:
            raise SystemExit(f"LFW person {name} missing under {args.lfw}")
    runner = FaultRunner(args.threads, prefix="faceaccess-fault-bench-")
    say(f"starting FaceAccess (log {runner.log}) ...")
    events: dict[int, dict] = {}
    faults: list[dict] = []
    try:
        runner.wait_up()
        token = http("POST", f"{runner.base}/api/v1/auth/token/",
                     json.dumps({"username": "admin", "password": runner.password}).encode(),
                     {"Content-Type": "application/json"}, TIMEOUT).data["token"]
        api = Api(runner.base, f"Token {token}")
        site = api.ok("POST", "/api/v1/sites/", {"name": "Fault bench"})
        keys = [api.ok("POST", "/api/v1/cameras/", {"site": site["id"], "name": f"door {c}"})["api_key"]
                for c in range(args.cameras)]
        face_urls, probes = [], []
        for name in people:
            photos = sorted((args.lfw / name).glob("*.jpg"))
            person = api.ok("POST", "/api/v1/people/", {"name": name, "sites": [site["id"]]})
            for photo in photos[:2]:
                face_urls.append(api.ok("POST", f"/api/v1/people/{person['id']}/faces/", photo=photo)["url"])
            probes += photos[2:12]
        for name in STRANGERS:
            probes += sorted((args.lfw / name).glob("*.jpg"))[:10]
        deadline = time.monotonic() + 300
        while True:
            faces = [api.ok("GET", url) for url in face_urls]
            if all(f["status"] not in ("pending", "processing") for f in faces) or time.monotonic() > deadline:
                break
            time.sleep(1)
        enrolled = sum(f["status"] == "enrolled" for f in faces)
        say(f"enrolled {enrolled}/{len(faces)} photos of {len(people)} people; {len(probes)} probe photos")

        stop = threading.Event()
        rec = Record(time.monotonic())

        def mark(what: str) -> None:
            faults.append({"t": round(time.monotonic() - rec.t0, 1), "what": what})
            say(what)

        cams = [threading.Thread(target=camera_loop, args=(c, runner.base, keys[c], probes, args, stop, rec),
                                 daemon=True) for c in range(args.cameras)]
        for t in cams:
            t.start()
        time.sleep(args.calm)

        pid = runner.redis_pid()
        os.kill(runner.proc.pid, signal.SIGSTOP)  # else its supervision restarts Redis within a second
        try:
            os.kill(pid, signal.SIGTERM)
            mark(f"Redis (pid {pid}) stopped with SIGTERM; runner paused")
            time.sleep(args.redis_down)
        finally:
            os.kill(runner.proc.pid, signal.SIGCONT)
        mark("runner continued: its supervision restarts Redis")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if runner.redis_pid() != pid and Path(f"/proc/{runner.redis_pid()}").exists():
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        mark(f"Redis back (pid {runner.redis_pid()})")
        time.sleep(args.calm)

        pid = runner.redis_pid()
        os.kill(pid, signal.SIGSTOP)
        mark(f"Redis (pid {pid}) frozen with SIGSTOP")
        try:
            time.sleep(args.redis_frozen)
        finally:
            os.kill(pid, signal.SIGCONT)
        mark("Redis continued (SIGCONT)")
        time.sleep(args.calm)

        for n in range(args.worker_kills):
            child = runner.pool_child()
            size = rss_kb(child) // 1024
            os.kill(child, signal.SIGKILL)
            mark(f"worker pool child (pid {child}, {size} MB) SIGKILLed ({n + 1}/{args.worker_kills})")
            time.sleep(args.calm)

        stop.set()
        mark("cameras stopping")
        for t in cams:
            t.join(args.wait + 40 + args.give_up)
        last_post = time.monotonic()
        mark("cameras stopped; following every stored event")

        stuck_at = None
        while True:
            events = events_by_id(api, site["id"])
            pending = [e for e in events.values() if e["status"] not in FINAL]
            waited = time.monotonic() - last_post
            if stuck_at is None and waited >= args.stuck_after:
                stuck_at = {"seconds": round(waited, 1), "pending": sorted(e["id"] for e in pending)}
            if not pending and stuck_at is None:
                stuck_at = {"seconds": round(waited, 1), "pending": []}
            if (not pending and stuck_at is not None) or waited >= args.lost_after:
                break
            time.sleep(5)
        all_final_after = round(time.monotonic() - last_post, 1) if not pending else None
        say(f"all stored events final {all_final_after} s after the last post" if all_final_after is not None
            else f"{len(pending)} events still not final after {args.lost_after:.0f} s")
        output = runner.output()
        runner_lines = [line for line in output.splitlines() if line.startswith("[faceaccess]")
                        and any(w in line for w in ("exited unexpectedly", "restarted on", "could not restart"))]
        # The worker's own account of each kill: "Worker exited prematurely: signal 9 (SIGKILL) Job: N." means
        # the child was running a task (then redelivered: acks_late + reject_on_worker_lost).
        kills_mid_task = len(re.findall(r"WorkerLostError\('Worker exited prematurely: signal 9 \(SIGKILL\) Job",
                                        output))
    finally:
        runner.stop(args.keep)

    snaps = rec.snapshots
    given_ids = {s["id"] for s in snaps.values() if s["id"] is not None}
    accepted = [s for s in snaps.values() if s["accepted"]]
    statuses = Counter(e["status"] for e in events.values())
    failed_reasons = Counter(reason_kind(e.get("reason", "")) for e in events.values() if e["status"] == "failed")
    missing = sorted(i for i in given_ids if i not in events)
    lost = sorted(missing + [i for i in given_ids if i in events and events[i]["status"] not in FINAL])
    longest = max(rec.requests, key=lambda r: r["seconds"])
    answers = Counter(f"{r['status']} {r['error']}".strip() for r in rec.requests)
    phase_of = sorted(faults, key=lambda f: f["t"])

    def phase(t: float) -> str:
        name = "calm (start)"
        for f in phase_of:
            if f["t"] <= t:
                name = f["what"]
        return name

    per_phase: dict[str, dict] = {}
    for r in rec.requests:
        p = per_phase.setdefault(phase(r["t"]), {"requests": 0, "max_s": 0.0, "answers": Counter()})
        p["requests"] += 1
        p["max_s"] = max(p["max_s"], r["seconds"])
        p["answers"][f"{r['status']} {r['error']}".strip()] += 1
    result = {
        "command": "python bench/fault_bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_end": os.getloadavg(),
        "settings": {k: getattr(args, k) for k in ("cameras", "wait", "interval", "give_up", "calm", "redis_down",
                                                   "redis_frozen", "worker_kills", "stuck_after", "lost_after")},
        "faults": faults,
        "snapshots_posted": len(snaps),
        "requests": len(rec.requests),
        "answers": dict(answers),
        "accepted": len(accepted),
        "stored_not_accepted": len(given_ids) - len({s["id"] for s in accepted if s["id"] is not None}),
        "never_stored": sum(1 for s in snaps.values() if s["id"] is None and not s["accepted"]),
        "events_stored": len(events),
        "decided": statuses.get("done", 0),
        "failed": statuses.get("failed", 0),
        "failed_reasons": dict(failed_reasons),
        "expired": statuses.get("expired", 0),
        "lost": len(lost),
        "lost_ids": lost,
        "stuck_pending": len(stuck_at["pending"]) if stuck_at else None,
        "stuck_pending_checked_after_s": stuck_at["seconds"] if stuck_at else None,
        "stuck_pending_ids": stuck_at["pending"] if stuck_at else None,
        "all_final_after_s": all_final_after,
        "decisions": dict(Counter(e.get("decision") or "-" for e in events.values() if e["status"] == "done")),
        "longest_request_s": longest["seconds"],
        "longest_request": longest,
        "request_limit_s": args.wait + 2,
        "per_phase": {k: {**v, "answers": dict(v["answers"])} for k, v in per_phase.items()},
        "runner_said": runner_lines,
        "worker_kills_that_hit_a_running_task": kills_mid_task,
    }
    ok = result["lost"] == 0 and result["stuck_pending"] == 0 and result["longest_request_s"] <= args.wait + 2
    result["targets_met"] = ok

    print()
    for line in runner_lines:
        print("  runner:", line)
    print(f"\nsnapshots posted     {result['snapshots_posted']} ({result['requests']} requests: {dict(answers)})")
    print(f"accepted (200/202)   {result['accepted']}   stored but never accepted (camera gave up) "
          f"{result['stored_not_accepted']}   never stored {result['never_stored']}")
    print(f"events stored        {result['events_stored']}")
    print(f"decided              {result['decided']}  {result['decisions']}")
    print(f"failed               {result['failed']}  {dict(failed_reasons)}")
    print(f"expired              {result['expired']}")
    print(f"lost                 {result['lost']}  (target 0) {lost[:20]}")
    print(f"stuck pending        {result['stuck_pending']}  (target 0; counted {args.stuck_after:g} s after the "
          f"last post, or when all were final: all final {all_final_after} s after it)")
    print(f"worker kills that hit a running task: {kills_mid_task}/{args.worker_kills}")
    print(f"longest request      {result['longest_request_s']:.2f} s  (target <= {args.wait + 2:g} s) "
          f"{longest}")
    for name, p in per_phase.items():
        print(f"  {name[:60]:<60} {p['requests']:>4} requests, max {p['max_s']:.2f} s, {dict(p['answers'])}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'TARGETS MET' if ok else 'TARGETS MISSED'}; written to {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
