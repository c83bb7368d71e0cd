"""A victim door while another camera, or an operator, hands the engine huge photos (issue 17, item 2).

    .venv/bin/python bench/starvation_bench.py --compare 916a7fc   # before (that revision) and after, in one run

Starts ``python -m faceaccess.runner`` (what `make run` starts) on a temp data dir and free ports, enrolls one LFW
person through the API, and makes a site with two cameras: the victim door and the attacker; with ``--compare
REV`` it does so first on a copy of revision REV (``git archive``; 916a7fc is main before the bounds of issue 17,
item 2), then on this tree, each a fresh system. In each it runs these phases of ``--phase`` seconds; in every one
the victim posts a real LFW photo of the enrolled person with ``?wait=10`` every ``--victim-every`` seconds (the
next one right away when an answer took longer):

- ``calm``: nothing else;
- ``camera 39.6 MP PNG``: the attacker camera posts a 7296x5472 PNG (mostly flat, ~0.1-0.5 MB: the issue's
  attack) ``--rate`` times a second, without waiting for the answers;
- ``camera 1440p PNG`` and ``camera 4K JPEG``: the same with the largest PNG (2560x1440) and JPEG (3840x2160) the
  defaults accept;
- ``operator 39.6 MP PNG``: an admin uploads the 39.6 MP PNG as enrollment photos of a second person at ``--rate``;
- ``operator 24 MP JPEG``: the same with 24 MP phone-sized JPEGs (accepted, decoded at reduced size after).

Between phases it waits until the victim is answered within 1 s again (the backlog drained). Prints, per
configuration and phase: the victim's posts decided within the wait / sent, p50 / p95 of their answer times and
the p95's ratio to that configuration's calm p95, and the attacker's answers by HTTP status. Written to ``--json``.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from own_runner import REPO, TIMEOUT, OwnRunner, tree_of

from faceaccess.http_client import http, multipart

PERSON = "Colin_Powell"
OTHER = "George_W_Bush"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def big_picture(face: Path, width: int, height: int, fmt: str) -> bytes:
    """A flat grey frame with a face in it: cheap to send, costly to decode (the issue's attack)."""
    from PIL import Image

    frame = Image.new("RGB", (width, height), (118, 120, 117))
    with Image.open(face) as img:
        frame.paste(img.convert("RGB"), (width // 2, height // 3))
    buf = io.BytesIO()
    frame.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {"compress_level": 9}))
    return buf.getvalue()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class System:
    """One running FaceAccess with the bench's site, cameras and people."""

    def __init__(self, name: str, repo: Path, photos: list[Path], other: list[Path]) -> None:
        self.name = name
        self.runner = OwnRunner(threads=16, prefix=f"faceaccess-starve-{name}-", repo=repo)
        say(f"[{name}] starting FaceAccess (log {self.runner.log}) ...")
        self.runner.wait_up()
        base = self.runner.base
        token = http("POST", f"{base}/api/v1/auth/token/",
                     json.dumps({"username": "admin", "password": self.runner.password}).encode(),
                     {"Content-Type": "application/json"}, TIMEOUT).data["token"]
        self.token = token
        self.site = self.post("/api/v1/sites/", {"name": "Starvation bench"})
        self.victim_key = self.post("/api/v1/cameras/", {"site": self.site["id"], "name": "victim door"})["api_key"]
        self.attacker_key = self.post("/api/v1/cameras/", {"site": self.site["id"], "name": "attacker"})["api_key"]
        person = self.post("/api/v1/people/", {"name": PERSON, "sites": [self.site["id"]]})
        self.other = self.post("/api/v1/people/", {"name": OTHER, "sites": [self.site["id"]]})
        for photo in photos[:2]:
            self.upload(f"/api/v1/people/{person['id']}/faces/", photo.name, photo.read_bytes())
        self.upload(f"/api/v1/people/{self.other['id']}/faces/", other[0].name, other[0].read_bytes())
        time.sleep(5)  # their embeddings

    def auth(self, content_type: str = "application/json") -> dict[str, str]:
        return {"Authorization": f"Token {self.token}", "Content-Type": content_type}

    def post(self, path: str, body: dict) -> dict:
        answer = http("POST", self.runner.base + path, json.dumps(body).encode(), self.auth(), TIMEOUT)
        if answer.status not in (200, 201, 202):
            raise SystemExit(f"POST {path} -> {answer.status}: {answer.text[:300]}")
        return answer.data

    def upload(self, path: str, name: str, data: bytes) -> int:
        body, content_type = multipart({}, {"image": (name, data)})
        return http("POST", self.runner.base + path, body, self.auth(content_type), TIMEOUT).status

    def snapshot(self, key: str, name: str, data: bytes, wait: float) -> tuple[int, float, str]:
        body, content_type = multipart({}, {"image": (name, data)})
        started = time.perf_counter()
        answer = http("POST", f"{self.runner.base}/api/v1/snapshots/?wait={wait:g}", body,
                      {"Authorization": f"Api-Key {key}", "Content-Type": content_type}, wait + 20)
        status = answer.data.get("status", "") if answer.status in (200, 202) and answer.data else ""
        return answer.status, (time.perf_counter() - started) * 1000.0, status


def run_phase(system: System, phase: str, attack: tuple[str, str, bytes] | None, victim_photos: list[Path],
              args: argparse.Namespace) -> dict:
    stop = threading.Event()
    attacker_statuses: Counter[int] = Counter()
    threads: list[threading.Thread] = []

    def attack_once(kind: str, name: str, data: bytes) -> None:
        if kind == "camera":
            status = system.snapshot(system.attacker_key, name, data, 0)[0]
        else:
            status = system.upload(f"/api/v1/people/{system.other['id']}/faces/", name, data)
        attacker_statuses[status] += 1

    def attacker() -> None:
        assert attack is not None
        next_at = time.monotonic()
        while not stop.is_set():
            t = threading.Thread(target=attack_once, args=attack, daemon=True)
            t.start()
            threads.append(t)
            next_at += 1.0 / args.rate
            stop.wait(max(0.0, next_at - time.monotonic()))

    if attack is not None:
        threading.Thread(target=attacker, daemon=True).start()
        time.sleep(2.0)  # let the attack start
    times, decided, sent = [], 0, 0
    end = time.monotonic() + args.phase
    k = 0
    while time.monotonic() < end:
        photo = victim_photos[k % len(victim_photos)]
        k += 1
        started = time.monotonic()
        status, ms, state = system.snapshot(system.victim_key, photo.name, photo.read_bytes(), 10)
        sent += 1
        times.append(ms)
        decided += status == 200 and state == "done"
        time.sleep(max(0.0, args.victim_every - (time.monotonic() - started)))
    stop.set()
    for t in threads:
        t.join(timeout=TIMEOUT)
    result = {"phase": phase, "victim_sent": sent, "victim_decided": decided,
              "victim_p50_ms": round(statistics.median(times), 1), "victim_p95_ms": round(percentile(times, 0.95), 1),
              "attacker_answers": dict(sorted(attacker_statuses.items()))}
    say(f"[{system.name}] {phase}: {result}")
    return result


def drain(system: System, photo: Path) -> float:
    """Wait until the victim is answered within 1 s twice running (at most 300 s); the seconds it took."""
    started = time.monotonic()
    good = 0
    while time.monotonic() - started < 300 and good < 2:
        status, ms, state = system.snapshot(system.victim_key, photo.name, photo.read_bytes(), 10)
        good = good + 1 if status == 200 and ms < 1000 else 0
        time.sleep(0.5)
    return round(time.monotonic() - started, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", metavar="REV", help="measure revision REV first, then this tree, in one run")
    parser.add_argument("--phase", type=float, default=30.0, help="seconds per phase")
    parser.add_argument("--rate", type=float, default=2.0, help="attacking posts per second")
    parser.add_argument("--victim-every", type=float, default=0.5)
    parser.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "datasets" / "lfw" / "images")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dirs (and their logs)")
    parser.add_argument("--json", type=Path, default=REPO / "out" / "starvation_bench.json")
    args = parser.parse_args(argv)
    configs = ["before", "after"] if args.compare else ["after"]

    sys.path.insert(0, str(REPO))
    photos = sorted((args.lfw / PERSON).glob("*.jpg"))
    other = sorted((args.lfw / OTHER).glob("*.jpg"))
    if len(photos) < 12 or not other:
        raise SystemExit(f"LFW people {PERSON} / {OTHER} missing under {args.lfw}")
    victim_photos = photos[2:12]
    say("making the attack's pictures ...")
    attacks = {
        "camera 39.6 MP PNG": ("camera", "huge.png", big_picture(photos[0], 7296, 5472, "PNG")),
        "camera 1440p PNG": ("camera", "1440p.png", big_picture(photos[0], 2560, 1440, "PNG")),
        "camera 4K JPEG": ("camera", "4k.jpg", big_picture(photos[0], 3840, 2160, "JPEG")),
        "operator 39.6 MP PNG": ("operator", "huge.png", big_picture(other[0], 7296, 5472, "PNG")),
        "operator 24 MP JPEG": ("operator", "phone.jpg", big_picture(other[0], 6000, 4000, "JPEG")),
    }
    sizes = {name: len(a[2]) for name, a in attacks.items()}
    say(f"attack files (bytes): {sizes}")
    results = []
    for name in configs:
        repo = tree_of(args.compare) if name == "before" else REPO
        system = System(name, repo, photos, other)
        try:
            phases = [run_phase(system, "calm", None, victim_photos, args)]
            for phase, attack in attacks.items():
                phases.append(run_phase(system, phase, attack, victim_photos, args))
                phases[-1]["drain_s"] = drain(system, victim_photos[0])
            results.append({"config": name, "phases": phases})
        finally:
            system.runner.stop(args.keep)
            if repo != REPO:
                shutil.rmtree(repo, ignore_errors=True)

    if args.compare:
        print(f"\nbefore: revision {args.compare}; after: this tree")
    print(f"\nvictim door: an LFW photo with ?wait=10 every {args.victim_every:g} s; attacker: {args.rate:g} posts/s; "
          f"{args.phase:g} s per phase\n")
    print("| config | phase | victim decided / sent | victim p50 / p95 ms | p95 vs calm | attacker answers "
          "(HTTP status: count) | backlog drained in s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        calm = r["phases"][0]["victim_p95_ms"]
        for p in r["phases"]:
            answers = ", ".join(f"{k}: {v}" for k, v in p["attacker_answers"].items()) or "-"
            print(f"| {r['config']} | {p['phase']} | {p['victim_decided']}/{p['victim_sent']} | {p['victim_p50_ms']} / "
                  f"{p['victim_p95_ms']} | {p['victim_p95_ms'] / calm:.2f}x | {answers} | {p.get('drain_s', '')} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "attack_bytes": sizes,
                                     "results": results}, indent=2))
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
