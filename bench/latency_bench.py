"""Door latency: one camera posting real photos one after the other with ``?wait=10``, against a running
FaceAccess (``make run``) on this machine.

    .venv/bin/python bench/latency_bench.py --username admin --password ...     # or --token / FACEACCESS_TOKEN
    .venv/bin/python bench/latency_bench.py --n 200 --variants 640x480,250x250 --json out/latency_bench.json
    .venv/bin/python bench/latency_bench.py --variants 640x480 --liveness off,enforce   # liveness's cost, A/B

Sets up its own site, camera and a few enrolled LFW people (through the API; removed again at the end
unless --keep), then for each variant posts ``--n`` photos sequentially (after ``--warmup`` unrecorded
ones): half are other photos of the enrolled people (granted), half are strangers (unknown).

- ``250x250``: the raw LFW JPEGs.
- ``640x480``: the same faces pasted (at their 250x250 size, somewhere different each time) onto a
  640x480 door-camera-like background, JPEG quality 90.

Reports client-side p50/p95/p99 (the time from sending the request to reading the whole answer) and the
per-stage breakdown the service records on every event (``timings`` in the event's JSON: upload parse +
checks, file store, row insert + commit, queue wait, decode, detect, align + embed, pgvector search,
decide, save, notify the waiting request). Only 127.0.0.1 / localhost / ::1 are accepted as the server:
this is a benchmark of this machine, never a load generator against somebody else's.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from faceaccess.http_client import multipart

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LFW = REPO.parent / "shared" / "datasets" / "lfw"
TAG = "latency-bench-"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# The stages the service records, in the order a snapshot meets them (key in `timings`, label).
STAGES = [
    ("parse", "upload parse + checks (auth, multipart, header)"),
    ("store", "file store"),
    ("insert", "row insert + commit"),
    ("enqueue", "queue publish (web)"),
    ("queue", "queue wait (publish -> task start)"),
    ("load", "task start -> image bytes (event row, file)"),
    ("decode", "decode"),
    ("batch_wait", "batch gathering"),
    ("detect", "detect"),
    ("embed", "align + embed"),
    ("search", "pgvector search (+ impostor check)"),
    ("decide", "decide (people, grants, camera rules)"),
    ("liveness", "liveness (the face about to be let in)"),
    ("save", "save (the door's debounce look-up)"),
    ("commit", "write + commit (decision UPDATE, face rows)"),
    ("notify", "notify the waiting request (publish -> wake)"),
    ("fetch", "read the decided event back (web)"),
]


# ---------------------------------------------------------------- HTTP -------------------------------------

class HttpClient:
    """One keep-alive HTTP/1.1 connection (a camera holds one open), reconnecting when the server closed it."""

    def __init__(self, base_url: str, auth: str = "", timeout: float = 60.0):
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK:
            raise SystemExit(f"--base-url must be http:// on 127.0.0.1, localhost or ::1 (got {base_url!r})")
        self.host, self.port = parts.hostname, parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.auth, self.timeout = auth, timeout
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: bytes | None = None, content_type: str = "",
             auth: str | None = None) -> tuple[int, dict, float]:
        """(status, JSON body, client-side ms from sending the request to having read the whole answer)."""
        headers = {"Accept": "application/json", "Connection": "keep-alive"}
        if auth or self.auth:
            headers["Authorization"] = auth or self.auth
        if content_type:
            headers["Content-Type"] = content_type
        if "://" in path:  # a URL from an answer: keep its path and query
            parts = urlsplit(path)
            url = parts.path + (f"?{parts.query}" if parts.query else "")
        else:
            url = self.prefix + path
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                t0 = time.perf_counter()
                self.conn.request(method, url, body=body, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
                elapsed = (time.perf_counter() - t0) * 1000.0
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest):
                self.close()
                if attempt:
                    raise
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {"error": "not_json", "detail": raw[:300].decode(errors="replace")}
        return response.status, data, elapsed

    def ok(self, method: str, path: str, body: dict | None = None, expect=(200, 201, 202, 204), **kw) -> dict:
        raw = json.dumps(body).encode() if body is not None else None
        status, data, _ = self.call(method, path, raw, "application/json" if raw else "", **kw)
        if status not in expect:
            raise RuntimeError(f"{method} {path} -> {status}: {data}")
        return data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def add_server_arguments(p: argparse.ArgumentParser, base_url_help: str | None = None) -> None:
    """The server and how to log in to it (``login``'s arguments), and where LFW is."""
    p.add_argument("--base-url", default=os.environ.get("FACEACCESS_URL", "http://127.0.0.1:8000"), help=base_url_help)
    p.add_argument("--token", default=os.environ.get("FACEACCESS_TOKEN"))
    p.add_argument("--username", default=os.environ.get("FACEACCESS_USER"))
    p.add_argument("--password", default=os.environ.get("FACEACCESS_PASSWORD"))
    p.add_argument("--lfw", type=Path, default=Path(os.environ.get("FACEACCESS_LFW", DEFAULT_LFW)))


def login(base_url: str, token: str | None, username: str | None, password: str | None) -> str:
    if token:
        return f"Token {token}"
    if not (username and password):
        raise SystemExit("give --token (or FACEACCESS_TOKEN), or --username and --password (FACEACCESS_USER / "
                         "FACEACCESS_PASSWORD)")
    body = HttpClient(base_url).ok("POST", "/api/v1/auth/token/", {"username": username, "password": password})
    return f"Token {body['token']}"


# ---------------------------------------------------------------- photos -----------------------------------

def lfw_people(lfw: Path, min_photos: int) -> list[tuple[str, list[Path]]]:
    out = []
    for folder in sorted((lfw / "images").iterdir()):
        photos = sorted(folder.glob("*.jpg"))
        if len(photos) >= min_photos:
            out.append((folder.name, photos))
    return out


def background(seed: int, size=(640, 480)) -> Image.Image:
    """A door-camera-like scene: a lit wall gradient, a door frame, some texture (deterministic)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y = np.linspace(0, 1, h)[:, None]
    x = np.linspace(0, 1, w)[None, :]
    base = 150 + 50 * np.sin(3 * x + rng.uniform(0, 3)) * (0.6 + 0.4 * y)
    img = np.stack([base * c for c in rng.uniform(0.75, 1.05, 3)], axis=-1)
    img += rng.normal(0, 6, img.shape)
    x0 = int(rng.integers(40, w - 200))
    img[:, x0:x0 + 12] *= 0.55  # door frame
    img[:, x0 + 150:x0 + 162] *= 0.55
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def on_canvas(photo: bytes, seed: int) -> bytes:
    """The 250x250 LFW photo pasted at its own size somewhere on a 640x480 background, as a JPEG."""
    rng = np.random.default_rng(seed)
    canvas = background(seed)
    face = Image.open(io.BytesIO(photo)).convert("RGB")
    canvas.paste(face, (int(rng.integers(0, 640 - face.width)), int(rng.integers(0, 480 - face.height))))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@dataclass
class Probe:
    name: str
    raw: bytes  # the 250x250 LFW JPEG
    person_id: int | None  # expected person (None: a stranger)

    def image(self, variant: str, seed: int) -> bytes:
        return self.raw if variant == "250x250" else on_canvas(self.raw, seed)


# ---------------------------------------------------------------- the door ----------------------------------

@dataclass
class Door:
    admin: HttpClient
    site: dict
    cameras: list[dict]
    people: list[int]
    probes: list[Probe] = field(default_factory=list)

    def camera_client(self, base_url: str, index: int = 0) -> HttpClient:
        return HttpClient(base_url, f"Api-Key {self.cameras[index]['api_key']}")

    def remove(self) -> None:
        for pid in self.people:
            self.admin.call("DELETE", f"/api/v1/people/{pid}/")
        self.admin.call("DELETE", f"/api/v1/sites/{self.site['id']}/")


def clean_leftovers(admin: HttpClient, tag: str = TAG) -> None:
    for person in admin.ok("GET", f"/api/v1/people/?search={tag}&page_size=500")["results"]:
        if person["external_id"].startswith(tag):
            admin.call("DELETE", f"/api/v1/people/{person['id']}/")
    for site in admin.ok("GET", "/api/v1/sites/?page_size=500")["results"]:
        if site["name"].startswith(tag):
            admin.call("DELETE", f"/api/v1/sites/{site['id']}/")


def set_up_door(admin: HttpClient, lfw: Path, people: int, cameras: int = 1, tag: str = TAG,
                enroll_timeout: float = 600.0, detection_policy: str | None = None,
                liveness_policy: str | None = None, clean: bool = True) -> Door:
    """A site, ``cameras`` cameras, ``people`` LFW people enrolled with two photos each; probes: their other
    photos (expected granted) and as many strangers (one-photo LFW people, expected unknown). The site's
    ``detection_policy`` and ``liveness_policy`` are the server's defaults unless given."""
    if clean:
        clean_leftovers(admin, tag)
    run_id = f"{tag}{time.strftime('%Y%m%d-%H%M%S')}{'-' + liveness_policy if liveness_policy else ''}"
    site = admin.ok("POST", "/api/v1/sites/", {"name": run_id, **({"detection_policy": detection_policy}
                                                                   if detection_policy else {}),
                                               **({"liveness_policy": liveness_policy} if liveness_policy else {})})
    door = Door(admin, site, [], [])
    try:
        for i in range(cameras):
            door.cameras.append(admin.ok("POST", "/api/v1/cameras/", {"site": site["id"], "name": f"door {i + 1}"}))
        candidates = lfw_people(lfw, 4)
        chosen = candidates[:: max(1, len(candidates) // people)][:people]
        face_urls, known = [], []
        for name, photos in chosen:
            person = admin.ok("POST", "/api/v1/people/", {"name": name, "external_id": f"{run_id}-{name}",
                                                           "sites": [site["id"]]})
            door.people.append(person["id"])
            for path in photos[:2]:
                body, ctype = multipart({}, {"image": (path.name, path.read_bytes())})
                status, face, _ = admin.call("POST", f"/api/v1/people/{person['id']}/faces/", body, ctype)
                if status != 202:
                    raise RuntimeError(f"enrolling {path.name}: {status} {face}")
                face_urls.append(face["url"])
            known += [Probe(p.name, p.read_bytes(), person["id"]) for p in photos[2:6]]
        deadline = time.monotonic() + enroll_timeout
        while True:
            faces = [admin.ok("GET", url) for url in face_urls]
            if all(f["status"] not in ("pending", "processing") for f in faces):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("enrollment did not finish: is a worker running?")
            time.sleep(0.3)
        strangers = [(n, p) for n, p in lfw_people_with_one_photo(lfw, len(known))]
        door.probes = interleave(known, [Probe(p.name, p.read_bytes(), None) for _, p in strangers])
        return door
    except BaseException:
        door.remove()
        raise


def lfw_people_with_one_photo(lfw: Path, count: int) -> list[tuple[str, Path]]:
    out = []
    for folder in sorted((lfw / "images").iterdir()):
        photos = list(folder.glob("*.jpg"))
        if len(photos) == 1:
            out.append((folder.name, photos[0]))
    step = max(1, len(out) // max(1, count))
    return out[::step][:count]


def interleave(a: list, b: list) -> list:
    out = []
    for i in range(max(len(a), len(b))):
        out += ([a[i]] if i < len(a) else []) + ([b[i]] if i < len(b) else [])
    return out


# ---------------------------------------------------------------- numbers ----------------------------------

def percentiles(values: list[float], qs=(50, 95, 99)) -> dict[str, float | None]:
    if not values:
        return {f"p{q}": None for q in qs}
    arr = np.asarray(values, dtype=np.float64)
    return {f"p{q}": float(np.percentile(arr, q)) for q in qs}


def stage_medians(timings: list[dict]) -> dict[str, float]:
    keys = {k for t in timings for k, v in t.items() if isinstance(v, int | float)}
    return {k: statistics.median(float(t[k]) for t in timings if isinstance(t.get(k), int | float)) for k in keys}


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


@dataclass
class Sample:
    client_ms: float
    status: int
    decision: str
    expected: str
    timings: dict
    latency_ms: float | None


def post_snapshot(camera: HttpClient, image: bytes, name: str, wait: float) -> tuple[int, dict, float]:
    body, ctype = multipart({}, {"image": (name, image)})
    return camera.call("POST", f"/api/v1/snapshots/?wait={wait:g}", body, ctype)


def run_variant(camera: HttpClient, door: Door, variant: str, n: int, warmup: int, wait: float,
                offset: int = 0) -> list[Sample]:
    """``warmup`` unrecorded posts, then ``n`` recorded ones (probes ``offset``, ``offset + 1``...)."""
    # Images are made before the clock starts: the client's own work is not the door's latency.
    picks = [door.probes[(offset + i) % len(door.probes)] for i in range(-warmup, n)]
    plan = [(p, p.image(variant, seed=offset + i)) for i, p in enumerate(picks)]
    samples = []
    for i, (probe, image) in enumerate(plan):
        status, body, ms = post_snapshot(camera, image, probe.name, wait)
        if i < warmup:
            continue
        expected = "unknown" if probe.person_id is None else f"granted:{probe.person_id}"
        got = body.get("decision") or body.get("status") or body.get("error", "?")
        if got == "granted":
            got = f"granted:{body.get('person')}"
        samples.append(Sample(ms, status, got, expected, body.get("timings") or {}, body.get("latency_ms")))
    return samples


def summarise(variant: str, samples: list[Sample]) -> dict:
    done = [s for s in samples if s.status == 200]
    timings = [s.timings for s in done if s.timings]
    return {
        "variant": variant,
        "n": len(samples),
        "answered_200": len(done),
        "as_expected": sum(s.decision == s.expected for s in samples),
        "client_ms": percentiles([s.client_ms for s in samples]) | {"mean": statistics.fmean(
            s.client_ms for s in samples)},
        "event_latency_ms": percentiles([s.latency_ms for s in done if s.latency_ms is not None]),
        "stages_median_ms": stage_medians(timings),
        "server_total_ms": percentiles([t["total"] for t in timings if "total" in t]),
    }


def print_summary(results: list[dict]) -> None:
    w = max([10, *(len(r["variant"]) + 2 for r in results)])
    print(f"\n{'variant':{w}s} {'n':>4s} {'p50':>8s} {'p95':>8s} {'p99':>8s} {'mean':>8s}  as expected")
    for r in results:
        c = r["client_ms"]
        print(f"{r['variant']:{w}s} {r['n']:4d} {c['p50']:8.1f} {c['p95']:8.1f} {c['p99']:8.1f} {c['mean']:8.1f}"
              f"  {r['as_expected']}/{r['n']}")
    if not any(r["stages_median_ms"] for r in results):
        print("(the server records no per-stage timings)")
        return
    print(f"\nper-stage medians, ms (recorded by the service on each event){'':2s}"
          + "".join(f"{r['variant']:>{w}s}" for r in results))
    known = [k for k, _ in STAGES]
    extra = sorted({k for r in results for k in r["stages_median_ms"]} - set(known) - {"total"})
    for key, label in [*STAGES, *((k, k) for k in extra), ("total", "server total (request start -> answer)")]:
        vals = [r["stages_median_ms"].get(key) for r in results]
        if all(v is None for v in vals):
            continue
        print(f"  {label:60s}" + "".join(f"{v:{w}.2f}" if v is not None else f"{'-':>{w}s}" for v in vals))
    print(f"  {'client p50':60s}" + "".join(f"{r['client_ms']['p50']:{w}.2f}" for r in results))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_arguments(p, "the server; several, comma-separated, are measured in turns (an A/B under the same load)")
    p.add_argument("--labels", default="", help="names of the servers, comma-separated")
    p.add_argument("--variants", default="640x480,250x250")
    p.add_argument("--n", type=int, default=100, help="recorded posts per variant (and server)")
    p.add_argument("--chunk", type=int, default=20, help="posts per turn when there are several servers")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--people", type=int, default=8, help="LFW people enrolled for the run")
    p.add_argument("--wait", type=float, default=10.0)
    p.add_argument("--detection-policy", help="the site's detection policy (e.g. close); default: the server's")
    p.add_argument("--liveness", default="", help="liveness policies to compare on one server, in turns, one site "
                                                   "each (e.g. off,enforce); default: the server's for new sites")
    p.add_argument("--label", default="", help="a name for this run in the JSON")
    p.add_argument("--json", type=Path, default=REPO / "out" / "latency_bench.json")
    p.add_argument("--keep", action="store_true", help="keep the site, camera and people")
    args = p.parse_args(argv)

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in ("640x480", "250x250"):
            raise SystemExit(f"unknown variant {v!r}: use 640x480 and/or 250x250")
    urls = [u.strip() for u in args.base_url.split(",") if u.strip()]
    labels = [x.strip() for x in args.labels.split(",") if x.strip()] or urls
    policies = [x.strip() for x in args.liveness.split(",") if x.strip()] or [None]
    # An A/B of liveness policies: one server and one door, its site switched to each policy in turn (two sites
    # would enroll the same people twice, and a face would match the other site's copy of its person).
    ab_liveness = len(policies) > 1
    if ab_liveness:
        if len(urls) != 1:
            raise SystemExit("--liveness with several policies takes one --base-url")
        labels = [f"liveness {p}" for p in policies]
    elif len(labels) != len(urls):
        raise SystemExit("--labels needs one name per --base-url")
    doors: list[Door] = []
    results = []
    load_before = load_average()
    try:
        for url in urls:
            admin = HttpClient(url, login(url, args.token, args.username, args.password))
            doors.append(set_up_door(admin, args.lfw, args.people, detection_policy=args.detection_policy,
                                     liveness_policy=policies[0], cameras=len(policies)))
        cameras = [d.camera_client(u) for d, u in zip(doors, urls, strict=True)]
        if ab_liveness:  # a camera per policy: each stays within its own rate limit and debounce
            doors, cameras = doors * len(policies), [doors[0].camera_client(urls[0], i) for i in range(len(policies))]
        runs: dict[tuple[str, str], list[Sample]] = {(lb, v): [] for lb in labels for v in variants}
        chunk = args.n if len(labels) == 1 else max(1, args.chunk)
        for start in range(0, args.n, chunk):  # turns: every server and variant gets the same moments
            count = min(chunk, args.n - start)
            for v in variants:
                for i, (lb, door, camera) in enumerate(zip(labels, doors, cameras, strict=True)):
                    if ab_liveness:
                        door.admin.ok("PATCH", f"/api/v1/sites/{door.site['id']}/", {"liveness_policy": policies[i]})
                    warm = args.warmup if start == 0 else 0
                    runs[(lb, v)] += run_variant(camera, door, v, count, warm, args.wait, offset=start)
        results = [summarise(v if len(labels) == 1 else f"{lb} {v}", runs[(lb, v)]) | {"server": lb}
                   for lb in labels for v in variants]
    finally:
        if not args.keep:
            for door in {id(d): d for d in doors}.values():
                door.remove()
    print_summary(results)
    report = {"label": args.label, "servers": dict(zip(labels, urls * len(labels) if ab_liveness else urls,
                                                        strict=True)), "n": args.n,
              "detection_policy": args.detection_policy or "server default",
              "liveness": args.liveness or "server default",
              "wait": args.wait, "load_average_before": load_before, "load_average_after": load_average(),
              "cpus": os.cpu_count(), "python": platform.python_version(), "results": results,
              "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nload average before / after: {load_before} / {report['load_average_after']}; written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
