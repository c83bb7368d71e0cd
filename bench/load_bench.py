"""Door load: N cameras posting real photos at once for a while, against a running FaceAccess on this machine.

    .venv/bin/python bench/load_bench.py --cameras 16 --seconds 60 --username admin --password ...
    .venv/bin/python bench/load_bench.py --cameras 1,4,16 --seconds 30 --label "batching on"   # a sweep

Each camera (a thread with its own API key and keep-alive connection) posts LFW photos one after the other
with ``?wait=10`` (the raw 250x250 JPEGs, or ``--photos 640x480`` for the same faces on a 640x480 frame): half
are other photos of the people enrolled for the run, half strangers. After ``--seconds`` the cameras stop, and
every event still pending is followed (``GET /api/v1/events/<id>/``) for up to ``--drain`` seconds.

Reported per run: **accepted** (events the server took: 200 or 202 with an id), **decided** (done),
**failed**, **lost** (accepted but still pending after the drain, or gone: must be 0), refused (4xx/5xx
without an event), throughput (decisions per second of the run), client-side latency percentiles of the
answered posts, the service's own per-stage medians (queue wait, batch size...), and **CPU-ms per decision**:
the CPU time that the FaceAccess processes spent during the run (web server, Celery workers and their pool
processes, PostgreSQL, Redis: found from the web server's listening port and its environment, read in
/proc), divided by the decisions; the benchmark client's own CPU is reported beside it. Only 127.0.0.1,
localhost or ::1 are accepted as the server.

The server must allow the rate: ``make run`` with ``FACEACCESS_SNAPSHOT_RATE=100000/min`` (the default of
120/min per camera answers 429 beyond two posts a second).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency_bench import (  # noqa: E402
    REPO,
    HttpClient,
    add_server_arguments,
    load_average,
    login,
    percentiles,
    post_snapshot,
    set_up_door,
    stage_medians,
)

TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- CPU of the FaceAccess processes ----------

def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, utime + stime + cutime + cstime in ticks) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def listening_pid(port: int) -> int | None:
    """The process that listens on TCP ``port`` (from /proc/net/tcp*, then the socket's owner)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return None
    for pid in _all_pids():
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return pid
        except OSError:
            continue
    return None


def _port(url: str | None) -> int | None:
    try:
        return urlsplit(url).port if url else None
    except ValueError:
        return None


def server_processes(base_url: str) -> dict[str, list[int]]:
    """Root processes of each part of the running system: web, postgres, redis, workers (pool processes and
    PostgreSQL backends are counted as their descendants)."""
    web = listening_pid(urlsplit(base_url).port or 80)
    if web is None:
        return {}
    env = _environ(web)
    groups = {"web": [web]}
    for name, key in (("postgres", "DATABASE_URL"), ("redis", "REDIS_URL")):
        pid = listening_pid(_port(env.get(key)) or -1)
        if pid is not None:
            groups[name] = [pid]
    redis_url = env.get("REDIS_URL")
    workers = [pid for pid in _all_pids() if "celery" in _cmdline(pid) and " worker" in _cmdline(pid)
               and redis_url and _environ(pid).get("REDIS_URL") == redis_url]
    parents = {pid: (_stat(pid) or (0, 0))[0] for pid in workers}
    groups["workers"] = [pid for pid in workers if parents[pid] not in workers]  # main processes only
    return groups


def cpu_ticks(groups: dict[str, list[int]]) -> dict[str, int]:
    """CPU ticks of each group: its roots and every live descendant (dead ones are in their parent's cutime)."""
    stats = {pid: s for pid in _all_pids() if (s := _stat(pid)) is not None}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    out = {}
    for name, roots in groups.items():
        total, todo, seen = 0, list(roots), set()
        while todo:
            pid = todo.pop()
            if pid in seen or pid not in stats:
                continue
            seen.add(pid)
            total += stats[pid][1]
            todo += children.get(pid, [])
        out[name] = total
    return out


# ---------------------------------------------------------------- the cameras ------------------------------

@dataclass
class Post:
    started: float
    client_ms: float
    http: int
    event: int | None
    status: str
    timings: dict = field(default_factory=dict)


def camera_loop(client: HttpClient, probes: list, first: int, variant: str, wait: float, until: float,
                out: list[Post]) -> None:
    i = first
    while time.monotonic() < until:
        probe = probes[i % len(probes)]
        i += 1
        image = probe.image(variant, seed=i)
        started = time.monotonic()
        try:
            http, body, ms = post_snapshot(client, image, probe.name, wait)
        except Exception as exc:  # a refused connection, a timeout: counted, never fatal
            out.append(Post(started, (time.monotonic() - started) * 1000.0, 0, None, f"error: {exc}"))
            client.close()
            continue
        event = body.get("id") if http in (200, 202, 503) else None
        out.append(Post(started, ms, http, event, body.get("status") or body.get("error", "?"),
                        body.get("timings") or {}))


def drain(admin: HttpClient, posts: list[Post], seconds: float) -> dict[int, str]:
    """The final status of every accepted event, following the pending ones for up to ``seconds``."""
    final: dict[int, str] = {p.event: p.status for p in posts if p.event is not None}
    deadline = time.monotonic() + seconds
    while True:
        pending = [e for e, s in final.items() if s not in ("done", "failed")]
        if not pending or time.monotonic() > deadline:
            return final
        for event in pending:
            status, body, _ = admin.call("GET", f"/api/v1/events/{event}/")
            final[event] = body.get("status", "pending") if status == 200 else f"http {status}"
        time.sleep(0.5)


def run(base_url: str, admin: HttpClient, door, cameras: int, seconds: float, variant: str, wait: float,
        drain_s: float) -> dict:
    groups = server_processes(base_url)
    clients = [door.camera_client(base_url, i) for i in range(cameras)]
    posts: list[list[Post]] = [[] for _ in range(cameras)]
    cpu_before, client_before, load_before = cpu_ticks(groups), resource.getrusage(resource.RUSAGE_SELF), \
        load_average()
    started = time.monotonic()
    until = started + seconds
    threads = [threading.Thread(target=camera_loop, daemon=True,
                                args=(clients[i], door.probes, i * 7, variant, wait, until, posts[i]))
               for i in range(cameras)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + wait + 60)
    elapsed = time.monotonic() - started
    cpu_after, client_after = cpu_ticks(groups), resource.getrusage(resource.RUSAGE_SELF)
    for c in clients:
        c.close()
    flat = [p for per in posts for p in per]
    final = drain(admin, flat, drain_s)
    decided = sum(s == "done" for s in final.values())
    failed = sum(s == "failed" for s in final.values())
    lost = len(final) - decided - failed
    answered = [p for p in flat if p.http == 200 and p.status in ("done", "failed")]
    cpu_ms = {k: (cpu_after.get(k, 0) - cpu_before.get(k, 0)) * TICK_MS for k in groups}
    total_cpu = sum(cpu_ms.values())
    client_cpu = ((client_after.ru_utime + client_after.ru_stime) - (client_before.ru_utime + client_before.ru_stime))
    timings = [p.timings for p in answered if p.timings]
    return {
        "cameras": cameras, "seconds": round(elapsed, 2), "variant": variant,
        "posts": len(flat), "accepted": len(final), "decided": decided, "failed": failed, "lost": lost,
        "refused": sum(p.event is None for p in flat),
        "refused_by_status": _count(str(p.http) if p.http else p.status for p in flat if p.event is None),
        "answered_200": len(answered), "answered_202": sum(p.http == 202 for p in flat),
        "decisions_per_s": round(decided / elapsed, 2),
        "client_ms": percentiles([p.client_ms for p in answered]),
        "stages_median_ms": stage_medians(timings),
        "batch_size_mean": round(statistics.fmean(t.get("batch_size", 1) for t in timings), 2) if timings else None,
        "cpu_ms": {k: round(v) for k, v in cpu_ms.items()},
        "cpu_ms_per_decision": round(total_cpu / decided, 1) if decided and groups else None,
        "cpu_ms_per_decision_by_process": {k: round(v / decided, 1) for k, v in cpu_ms.items()} if decided else {},
        "client_cpu_ms_per_decision": round(client_cpu * 1000.0 / decided, 1) if decided else None,
        "processes": groups,
        "load_average_before": load_before, "load_average_after": load_average(),
    }


def _count(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def print_row(r: dict) -> None:
    c = r["client_ms"]
    fmt = lambda v: f"{v:7.0f}" if v is not None else f"{'-':>7s}"  # noqa: E731
    print(f"{r['cameras']:7d} {r['seconds']:6.0f} {r['accepted']:8d} {r['decided']:7d} {r['failed']:6d} "
          f"{r['lost']:4d} {r['refused']:7d} {r['decisions_per_s']:7.1f} {fmt(c['p50'])} {fmt(c['p95'])} "
          f"{fmt(c['p99'])} {r['cpu_ms_per_decision'] or 0:8.1f} {r['batch_size_mean'] or 0:6.2f}  "
          f"{r['load_average_before'][:1]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_arguments(p)
    p.add_argument("--cameras", default="16", help="cameras posting at once; a comma-separated list is a sweep")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--photos", default="250x250", choices=("250x250", "640x480"))
    p.add_argument("--wait", type=float, default=10.0)
    p.add_argument("--detection-policy", help="the site's detection policy (e.g. close); default: the server's")
    p.add_argument("--drain", type=float, default=60.0, help="how long to follow events still pending at the end")
    p.add_argument("--people", type=int, default=8)
    p.add_argument("--label", default="")
    p.add_argument("--json", type=Path, default=REPO / "out" / "load_bench.json")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)

    counts = [int(c) for c in args.cameras.split(",") if c.strip()]
    admin = HttpClient(args.base_url, login(args.base_url, args.token, args.username, args.password))
    door = set_up_door(admin, args.lfw, args.people, cameras=max(counts), detection_policy=args.detection_policy)
    rows = []
    try:
        print(f"{'cameras':>7s} {'s':>6s} {'accepted':>8s} {'decided':>7s} {'failed':>6s} {'lost':>4s} "
              f"{'refused':>7s} {'dec/s':>7s} {'p50':>7s} {'p95':>7s} {'p99':>7s} {'CPUms/d':>8s} {'batch':>6s}  load")
        for n in counts:
            rows.append(run(args.base_url, admin, door, n, args.seconds, args.photos, args.wait, args.drain))
            print_row(rows[-1])
    finally:
        if not args.keep:
            door.remove()
    report = {"label": args.label, "base_url": args.base_url, "photos": args.photos, "wait": args.wait,
              "cpus": os.cpu_count(), "runs": rows, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"written {args.json}")
    if not rows or any(r["lost"] for r in rows):
        print("LOST EVENTS: some accepted snapshots were never decided", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
