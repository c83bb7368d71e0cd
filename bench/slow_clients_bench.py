"""Doors and the console while one address holds many slow and idle connections (issue 17, item 1).

    .venv/bin/python bench/slow_clients_bench.py --compare       # before and after, in one run (~4 minutes)
    .venv/bin/python bench/slow_clients_bench.py --server after --connections 3000 --addresses 50

Starts ``python -m faceaccess.runner`` (what `make run` starts) on a temp data dir and free ports, enrolls one LFW
person through the API, and makes one camera. Then, for each server measured:

- ``after``: the runner's own web process (``faceaccess.serve``: waitress with read deadlines and connection
  limits);
- ``before``: plain waitress as `make run` started it before issue 17 (``python -m waitress --threads=16
  --max-request-body-size=...``, waitress's defaults for the rest: 100 connections, no read deadline), on another
  port, with the runner web process's own environment (same database, Redis and worker);

it runs ``--calm`` seconds of normal traffic, then ``--hold`` seconds of the same traffic while ``--connections``
connections come from ``--attack-from`` (one address; ``--addresses K`` spreads them over K loopback addresses):
two in three send a request line and then one header byte every ``--byte-every`` seconds and never finish their
headers, the rest send nothing at all. A connection the server closes is opened again ``--reconnect-after``
seconds later (0: not), so the attacker keeps trying to hold them all. The normal traffic comes from 127.0.0.1:
the camera posts a real LFW photo with ``?wait=10`` every ``--door-every`` seconds (with its camera key), and
``/healthz`` and the console's ``/login/`` page are fetched every second.

Prints, per server and phase: door posts answered / sent and p50 / p95 (a post that got no answer counts as its
``--door-timeout``), healthz and console answered (200) / sent within ``--probe-timeout``, and what became of the
slow connections: the most the server process held from the attacking addresses (its own sockets open at two
samples a second apart, read from /proc), how many it refused at once (503), and how many it closed at a read
deadline (408, or silently when nothing was sent). Written to ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from own_runner import REPO, TIMEOUT, OwnRunner, web_pids

from faceaccess.http_client import http, multipart

PERSON = "Colin_Powell"
STRANGERS = ["Ariel_Sharon", "Hugo_Chavez", "Jean_Chretien"]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# --- the server side, from /proc ----------------------------------------------------------------------------------

def sockets_from(pid: int, addresses: set[str]) -> set[str]:
    """``pid``'s open TCP sockets (inodes) whose peer is at one of ``addresses`` (IPv4)."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    wanted = {socket.inet_aton(a)[::-1].hex().upper() for a in addresses}  # /proc/net/tcp: little-endian hex
    found = set()
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return set()
    for line in lines:
        fields = line.split()
        if len(fields) > 9 and fields[9] in inodes and fields[2].split(":")[0] in wanted:
            found.add(fields[9])
    return found


# --- the attacker -------------------------------------------------------------------------------------------------

class Attack:
    """``n`` connections to ``host:port`` from ``sources``, in an asyncio loop of their own thread."""

    def __init__(self, host: str, port: int, n: int, sources: list[str], byte_every: float, idle_share: float,
                 reconnect_after: float) -> None:
        self.host, self.port, self.n, self.sources = host, port, n, sources
        self.byte_every, self.idle_share, self.reconnect_after = byte_every, idle_share, reconnect_after
        self.counts: Counter = Counter()  # connected, connect_failed, refused_503, timeout_408, closed_silently...
        self.closed_after: list[float] = []  # seconds from connect to a deadline's close (not the 503s)
        self.open = 0
        self.loop = asyncio.new_event_loop()
        self.stopping: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.stopping is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(30)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())
        self.loop.close()

    async def _main(self) -> None:
        self.stopping = asyncio.Event()
        idle_every = round(1 / self.idle_share) if self.idle_share > 0 else 0
        slots = [asyncio.create_task(self._slot(i, idle=bool(idle_every) and i % idle_every == idle_every - 1))
                 for i in range(self.n)]
        await self.stopping.wait()
        for task in slots:
            task.cancel()
        await asyncio.gather(*slots, return_exceptions=True)

    async def _slot(self, i: int, idle: bool) -> None:
        source = self.sources[i % len(self.sources)]
        await asyncio.sleep(random.random() * 2)  # not all at the same instant
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, local_addr=(source, 0)), 5)
            except (OSError, TimeoutError):
                self.counts["connect_failed"] += 1
                await asyncio.sleep(1)
                continue
            self.counts["connected"] += 1
            self.open += 1
            opened = time.monotonic()
            answer = b""
            try:
                if not idle:
                    writer.write(f"GET /healthz HTTP/1.1\r\nHost: {self.host}\r\nX-Slow: ".encode())
                next_byte = opened + random.random() * self.byte_every
                while True:
                    try:
                        data = await asyncio.wait_for(reader.read(4096), max(0.05, next_byte - time.monotonic()))
                    except TimeoutError:
                        if not idle:
                            writer.write(b"a")
                            await writer.drain()
                        next_byte = time.monotonic() + self.byte_every
                        continue
                    answer += data
                    if not data:
                        break
            except OSError:
                pass  # reset by the server
            finally:
                self.open -= 1
                writer.close()
            took = time.monotonic() - opened
            status = answer[9:12].decode(errors="replace") if answer.startswith(b"HTTP/") else ""
            if status:
                kind = {"503": "refused_503", "408": "timeout_408"}.get(status, f"answered_{status}")
            else:  # closed (or reset) with no answer: at the accept, or at a deadline when nothing was sent
                kind = "closed_at_once" if took < 1.0 else "closed_silently"
            self.counts[kind] += 1
            if kind in ("timeout_408", "closed_silently"):
                self.closed_after.append(took)
            if not self.reconnect_after:
                return
            await asyncio.sleep(self.reconnect_after)


# --- the normal traffic ------------------------------------------------------------------------------------------

class Traffic:
    """A camera posting photos, and /healthz and the console's login page fetched, from 127.0.0.1."""

    def __init__(self, base: str, camera_key: str, photos: list[Path], args: argparse.Namespace) -> None:
        self.base, self.key, self.photos, self.args = base, camera_key, photos, args
        self.stop = threading.Event()
        self.doors: list[tuple[int, float]] = []  # (status, seconds)
        self.probes: dict[str, list[tuple[int, float]]] = {"/healthz": [], "/login/": []}
        self.threads = [threading.Thread(target=self._doors, daemon=True)] + [
            threading.Thread(target=self._probe, args=(path,), daemon=True) for path in self.probes]

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(self.args.door_timeout + 10)

    def _doors(self) -> None:
        i = 0
        while not self.stop.is_set():
            photo = self.photos[i % len(self.photos)]
            i += 1
            body, content_type = multipart({"idempotency_key": f"slow-{time.time_ns()}"},
                                           {"image": (photo.name, photo.read_bytes())})
            started = time.monotonic()
            status = http("POST", f"{self.base}/api/v1/snapshots/?wait=10", body,
                          {"Authorization": f"Api-Key {self.key}", "Content-Type": content_type},
                          self.args.door_timeout).status
            self.doors.append((status, time.monotonic() - started))
            self.stop.wait(max(0.0, self.args.door_every - (time.monotonic() - started)))

    def _probe(self, path: str) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            status = http("GET", f"{self.base}{path}", timeout=self.args.probe_timeout).status
            self.probes[path].append((status, time.monotonic() - started))
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))

    def summary(self) -> dict:
        answered = [s for status, s in self.doors if status == 200]
        times = [s if status == 200 else max(s, self.args.door_timeout) for status, s in self.doors]
        out = {
            "door_posts": len(self.doors),
            "door_answered": len(answered),
            "door_statuses": dict(Counter(status for status, _ in self.doors)),
            "door_p50_ms": round(1000 * percentile(times, 50), 1) if times else None,
            "door_p95_ms": round(1000 * percentile(times, 95), 1) if times else None,
            "door_max_ms": round(1000 * max(times), 1) if times else None,
        }
        for path, rows in self.probes.items():
            name = path.strip("/").replace("/", "_")
            ok = [s for status, s in rows if status == 200]
            out[f"{name}_answered"] = len(ok)
            out[f"{name}_sent"] = len(rows)
            out[f"{name}_p95_ms"] = round(1000 * percentile(ok, 95), 1) if ok else None
        return out


# --- the servers --------------------------------------------------------------------------------------------------

class Before:
    """Plain waitress as `make run` started it before issue 17, beside the runner's own web process."""

    def __init__(self, runner: OwnRunner, web_pid: int, threads: int) -> None:
        from faceaccess.embedded import free_port

        env = dict(item.split("=", 1) for item in
                   Path(f"/proc/{web_pid}/environ").read_bytes().decode().split("\0") if "=" in item)
        max_body = int(env.get("FACEACCESS_MAX_UPLOAD_BYTES") or 10 * 1024 * 1024) * 2 + (1 << 20)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = runner.tmp / "before-waitress.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{self.port}", f"--threads={threads}",
                 f"--max-request-body-size={max_body}", "--ident=faceaccess", "faceaccess.wsgi:application"],
                cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + 120
        while http("GET", f"{self.base}/healthz", timeout=5).status != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"plain waitress did not come up:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def web_pid_of(runner: OwnRunner) -> int:
    pids = web_pids(runner.proc.pid)
    if len(pids) != 1:
        raise SystemExit(f"expected one faceaccess.serve process under the runner, found {pids}")
    return pids[0]


def measure(name: str, base: str, pid: int, camera_key: str, photos: list[Path], args) -> dict:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    sources = [f"{args.attack_from.rsplit('.', 1)[0]}.{int(args.attack_from.rsplit('.', 1)[1]) + k}"
               for k in range(args.addresses)]
    say(f"{name}: {args.calm:g} s of normal traffic")
    with Traffic(base, camera_key, photos, args) as calm:
        time.sleep(args.calm)
    say(f"{name}: {args.connections} slow/idle connections from {', '.join(sources[:3])}"
        f"{' ...' if len(sources) > 3 else ''} for {args.hold:g} s, the same traffic meanwhile")
    attack = Attack(host, int(port), args.connections, sources, args.byte_every, args.idle_share,
                    args.reconnect_after)
    # Held: the server's sockets from the attackers that were open at two samples a second apart (a refused
    # connection lives for microseconds, so one sample alone can catch a few of those in flight).
    held: list[int] = []
    cpu_before = cpu_seconds(pid)
    attack.start()
    with Traffic(base, camera_key, photos, args) as attacked:
        deadline = time.monotonic() + args.hold
        previous = sockets_from(pid, set(sources))
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = sockets_from(pid, set(sources))
            held.append(len(now & previous))
            previous = now
    held_at_end = held[-1] if held else 0
    open_at_end = attack.open
    attack.stop()
    cpu = cpu_seconds(pid) - cpu_before
    result = {
        "server": name,
        "calm": calm.summary(),
        "attacked": attacked.summary(),
        "slow_connections": {
            "wanted": args.connections,
            "server_held_max": max(held) if held else 0,
            "server_held_median": statistics.median(held) if held else 0,
            "server_held_at_end": held_at_end,
            "client_open_at_end": open_at_end,
            **dict(attack.counts),
            "deadline_close_median_s": round(statistics.median(attack.closed_after), 1) if attack.closed_after
            else None,
        },
        "web_cpu_s_per_s_attacked": round(cpu / args.hold, 3),
    }
    a = result["attacked"]
    say(f"{name}: doors {a['door_answered']}/{a['door_posts']} answered, p50 {a['door_p50_ms']} ms, p95 "
        f"{a['door_p95_ms']} ms; healthz {a['healthz_answered']}/{a['healthz_sent']}; console "
        f"{a['login_answered']}/{a['login_sent']}; server held at most {result['slow_connections']['server_held_max']}"
        f" slow connections; {dict(attack.counts)}")
    return result


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("before", "after"), action="append",
                        help="which server to measure (repeatable; default: after)")
    parser.add_argument("--compare", action="store_true", help="both, before then after, in one run")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=60.0, help="seconds the slow connections are held")
    parser.add_argument("--calm", type=float, default=15.0, help="seconds of normal traffic first")
    parser.add_argument("--attack-from", default="127.0.0.2", help="the (first) attacking address")
    parser.add_argument("--addresses", type=int, default=1, help="spread the connections over this many addresses")
    parser.add_argument("--byte-every", type=float, default=3.0, help="seconds between a slow header's bytes")
    parser.add_argument("--idle-share", type=float, default=1 / 3, help="share of connections that send nothing")
    parser.add_argument("--reconnect-after", type=float, default=1.0,
                        help="reopen a connection the server closed after this many seconds (0: do not)")
    parser.add_argument("--door-every", type=float, default=1.0)
    parser.add_argument("--door-timeout", type=float, default=15.0)
    parser.add_argument("--probe-timeout", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=16, help="web threads (both servers)")
    parser.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "datasets" / "lfw" / "images")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir (and its logs)")
    parser.add_argument("--json", type=Path, default=REPO / "out" / "slow_clients_bench.json")
    args = parser.parse_args(argv)
    servers = ["before", "after"] if args.compare else (args.server or ["after"])

    sys.path.insert(0, str(REPO))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.connections + 512
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    photos = sorted((args.lfw / PERSON).glob("*.jpg"))
    if len(photos) < 12:
        raise SystemExit(f"LFW person {PERSON} missing under {args.lfw}")
    probes = photos[2:12] + [p for name in STRANGERS for p in sorted((args.lfw / name).glob("*.jpg"))[:3]]

    runner = OwnRunner(args.threads, prefix="faceaccess-slow-bench-")
    say(f"starting FaceAccess (log {runner.log}) ...")
    results = []
    try:
        runner.wait_up()
        token = http("POST", f"{runner.base}/api/v1/auth/token/",
                     json.dumps({"username": "admin", "password": runner.password}).encode(),
                     {"Content-Type": "application/json"}, TIMEOUT).data["token"]
        auth = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

        def post(path: str, body: dict) -> dict:
            answer = http("POST", runner.base + path, json.dumps(body).encode(), auth, TIMEOUT)
            if answer.status not in (200, 201, 202):
                raise SystemExit(f"POST {path} -> {answer.status}: {answer.text[:300]}")
            return answer.data

        site = post("/api/v1/sites/", {"name": "Slow clients bench"})
        camera_key = post("/api/v1/cameras/", {"site": site["id"], "name": "door"})["api_key"]
        person = post("/api/v1/people/", {"name": PERSON, "sites": [site["id"]]})
        for photo in photos[:2]:
            body, content_type = multipart({}, {"image": (photo.name, photo.read_bytes())})
            http("POST", f"{runner.base}/api/v1/people/{person['id']}/faces/", body,
                 {"Authorization": f"Token {token}", "Content-Type": content_type}, TIMEOUT)
        time.sleep(5)  # the enrollment's embeddings (the doors' decisions do not matter here, only their times)
        web_pid = web_pid_of(runner)
        for name in servers:
            if name == "before":
                before = Before(runner, web_pid, args.threads)
                try:
                    results.append(measure("before", before.base, before.proc.pid, camera_key, probes, args))
                finally:
                    before.stop()
            else:
                results.append(measure("after", runner.base, web_pid_of(runner), camera_key, probes, args))
            time.sleep(3)
        runner_lines = [line for line in runner.output().splitlines()
                        if any(w in line for w in ("limits: headers", "over the limit of", "read deadline"))][-8:]
    finally:
        runner.stop(args.keep)

    print(f"\n{args.connections} connections from {args.addresses} address(es) held {args.hold:g} s "
          f"({args.idle_share:.0%} idle, the rest one header byte every {args.byte_every:g} s, reopened "
          f"{args.reconnect_after:g} s after a close); doors every {args.door_every:g} s with ?wait=10:\n")
    print("| server | phase | doors answered | door p50 / p95 ms | healthz answered | console answered | "
          "slow conns the server held (max) | refused at once | closed at a deadline | web CPU s/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r["slow_connections"]
        for phase in ("calm", "attacked"):
            p = r[phase]
            attacked = phase == "attacked"
            print(f"| {r['server']} | {phase} | {p['door_answered']}/{p['door_posts']} | {p['door_p50_ms']} / "
                  f"{p['door_p95_ms']} | {p['healthz_answered']}/{p['healthz_sent']} | "
                  f"{p['login_answered']}/{p['login_sent']} | "
                  + (f"{s['server_held_max']} | {s.get('refused_503', 0) + s.get('closed_at_once', 0)} | "
                     f"{s.get('timeout_408', 0) + s.get('closed_silently', 0)} | {r['web_cpu_s_per_s_attacked']} |"
                     if attacked else "| | | |"))
    for line in runner_lines:
        print("  runner:", line)
    after = next((r for r in results if r["server"] == "after"), None)
    ok = None
    if after is not None:
        a = after["attacked"]
        ok = (a["door_p95_ms"] is not None and a["door_p95_ms"] < 500 and a["door_answered"] == a["door_posts"]
              and a["healthz_answered"] == a["healthz_sent"])
    output = {
        "command": "python bench/slow_clients_bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_end": os.getloadavg(),
        "settings": {k: getattr(args, k) for k in ("connections", "hold", "calm", "attack_from", "addresses",
                                                   "byte_every", "idle_share", "reconnect_after", "door_every",
                                                   "door_timeout", "probe_timeout", "threads")},
        "results": results,
        "target": "after: door p95 < 500 ms, every door and healthz answered",
        "target_met": ok,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(output, indent=2) + "\n")
    if ok is not None:
        print(f"\n{'TARGET MET' if ok else 'TARGET MISSED'} (after: door p95 < 500 ms, every door and healthz "
              f"answered); written to {args.json}")
    return 0 if ok in (None, True) else 1


if __name__ == "__main__":
    sys.exit(main())
