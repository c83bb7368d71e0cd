#!/usr/bin/env python3
"""End-to-end smoke test against a running FaceAccess server (e.g. after `make run`).

Through the public API only: create a site and a camera, enroll two LFW people (two photos each),
post a third photo of each and a photo of a stranger with ?wait=10, and expect
granted-as-the-right-person, granted-as-the-right-person, unknown. Prints a table; exits 1 otherwise.
Everything it creates is deleted at the end (and leftovers of an interrupted run at the start), so the
enrolled faces of one run never match the probes of the next.

    python scripts/smoke.py --username admin --password secret
    FACEACCESS_TOKEN=... python scripts/smoke.py --base-url http://127.0.0.1:8000

Standard library only (and the project's faceaccess/http_client.py, loaded by its path), so it runs from
any Python 3.11.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LFW = REPO.parent / "shared" / "datasets" / "lfw"
TAG = "smoke-"  # external_id prefix of everything this script creates


def _load_http_client():
    """faceaccess/http_client.py, loaded by its path: importing it through the faceaccess package would start
    the package's Celery app, which a plain Python lacks."""
    spec = importlib.util.spec_from_file_location("faceaccess_http_client", REPO / "faceaccess" / "http_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_client = _load_http_client()
http, multipart = _client.http, _client.multipart


class ApiError(RuntimeError):
    pass


class Api:
    def __init__(self, base: str, auth: str):
        self.base, self.auth = base.rstrip("/"), auth

    def call(self, method: str, path: str, body: dict | None = None, files: dict | None = None,
             auth: str | None = None, timeout: float = 60) -> tuple[int, dict]:
        headers = {"Accept": "application/json"}
        if auth or self.auth:
            headers["Authorization"] = auth or self.auth
        data = None
        if files is not None:
            data, headers["Content-Type"] = multipart(body or {}, {name: (file.name, file.read_bytes())
                                                                   for name, file in files.items()})
        elif body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        url = path if path.startswith("http") else self.base + path
        status, _, answer, text = http(method, url, data, headers, timeout=timeout)
        if status == 0:
            raise ApiError(f"{method} {url}: no answer ({text})")
        if status >= 400 and not answer:
            answer = {"error": "http", "detail": text[:300]}
        return status, answer

    def ok(self, method: str, path: str, expect: tuple[int, ...] = (200, 201, 202, 204), **kw) -> dict:
        status, body = self.call(method, path, **kw)
        if status not in expect:
            raise ApiError(f"{method} {path} -> {status}: {body}")
        return body


def lfw_photos(lfw: Path, name: str) -> list[Path]:
    return sorted((lfw / "images" / name).glob(f"{name}_*.jpg"))


def login(args: argparse.Namespace) -> str:
    if args.token:
        return f"Token {args.token}"
    if not (args.username and args.password):
        sys.exit("give --token (or FACEACCESS_TOKEN), or --username and --password")
    body = Api(args.base_url, "").ok("POST", "/api/v1/auth/token/",
                                      body={"username": args.username, "password": args.password})
    return f"Token {body['token']}"


def clean_leftovers(api: Api) -> None:
    """Remove what an interrupted earlier run left (people, then their site and cameras)."""
    people = api.ok("GET", f"/api/v1/people/?search={TAG}&page_size=500")["results"]
    for person in people:
        if person["external_id"].startswith(TAG):
            api.ok("DELETE", f"/api/v1/people/{person['id']}/")
    for site in api.ok("GET", "/api/v1/sites/?page_size=500")["results"]:
        if site["name"].startswith(TAG):
            api.ok("DELETE", f"/api/v1/sites/{site['id']}/")


def wait_enrolled(api: Api, urls: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        faces = [api.ok("GET", url) for url in urls]
        if all(f["status"] not in ("pending", "processing") for f in faces) or time.monotonic() > deadline:
            return faces
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", default=os.environ.get("FACEACCESS_URL", "http://127.0.0.1:8000"))
    p.add_argument("--token", default=os.environ.get("FACEACCESS_TOKEN"))
    p.add_argument("--username", default=os.environ.get("FACEACCESS_USER"))
    p.add_argument("--password", default=os.environ.get("FACEACCESS_PASSWORD"))
    p.add_argument("--lfw", type=Path, default=Path(os.environ.get("FACEACCESS_LFW", DEFAULT_LFW)))
    p.add_argument("--people", nargs=2, default=["Colin_Powell", "Tony_Blair"], metavar="NAME",
                   help="two LFW people with at least 3 photos")
    p.add_argument("--photos", default="2,3,4", help="photo numbers: two to enroll, then the probe")
    p.add_argument("--stranger", default="AJ_Lamas", help="an LFW person who is not enrolled")
    p.add_argument("--threshold", type=float, help="site threshold (default: the embedder's own)")
    p.add_argument("--enroll-timeout", type=float, default=300.0)
    p.add_argument("--keep", action="store_true", help="keep what the run created")
    args = p.parse_args(argv)

    numbers = [int(n) for n in args.photos.split(",")]
    if len(numbers) != 3:
        sys.exit("--photos needs three numbers: two to enroll, one probe")
    plan = {}
    for name in args.people:
        photos = lfw_photos(args.lfw, name)
        if len(photos) < 3:
            sys.exit(f"{name} has {len(photos)} photos under {args.lfw}; pick people with at least 3")
        pick = {n: args.lfw / "images" / name / f"{name}_{n:04d}.jpg" for n in numbers}
        if not all(path.is_file() for path in pick.values()):
            sys.exit(f"{name} lacks one of the photos {args.photos}")
        plan[name] = [pick[n] for n in numbers]
    stranger_photos = lfw_photos(args.lfw, args.stranger)
    if not stranger_photos or args.stranger in args.people:
        sys.exit(f"stranger {args.stranger!r} has no photo under {args.lfw} or is one of the enrolled people")

    status, _, _, text = http("GET", args.base_url.rstrip("/") + "/healthz", timeout=10)
    if not 200 <= status < 400:
        print(f"server not reachable at {args.base_url}: {text if status == 0 else f'HTTP {status}'}", file=sys.stderr)
        return 2
    api = Api(args.base_url, login(args))
    clean_leftovers(api)
    run_id = f"{TAG}{time.strftime('%Y%m%d-%H%M%S')}"
    site_body = {"name": run_id} | ({"match_threshold": args.threshold} if args.threshold else {})
    site = api.ok("POST", "/api/v1/sites/", body=site_body)
    created_people = []
    try:
        camera = api.ok("POST", "/api/v1/cameras/", body={"site": site["id"], "name": "smoke door"})
        ids, face_urls = {}, []
        for name, photos in plan.items():
            person = api.ok("POST", "/api/v1/people/",
                            body={"name": name, "external_id": f"{run_id}-{name}", "sites": [site["id"]]})
            created_people.append(person["id"])
            ids[person["id"]] = name
            for path in photos[:2]:
                face = api.ok("POST", f"/api/v1/people/{person['id']}/faces/", files={"image": path})
                face_urls.append(face["url"])
        t0 = time.monotonic()
        faces = wait_enrolled(api, face_urls, args.enroll_timeout)
        bad = [f for f in faces if f["status"] != "enrolled"]
        print(f"enrolled {len(faces) - len(bad)}/{len(faces)} photos in {time.monotonic() - t0:.1f} s")
        for f in bad:
            print(f"  face {f['id']}: {f['status']}: {f['reason']}", file=sys.stderr)
        if bad:
            return 1

        probes = [(path_list[2], name) for name, path_list in plan.items()] + [(stranger_photos[0], None)]
        rows, ok = [], True
        key = f"Api-Key {camera['api_key']}"
        for path, expected in probes:
            t0 = time.monotonic()
            status, body = api.call("POST", "/api/v1/snapshots/?wait=10", files={"image": path}, auth=key)
            wall = (time.monotonic() - t0) * 1000
            got = ids.get(body.get("person"), "-") if status == 200 else "-"
            want = ("granted", expected) if expected else ("unknown", "-")
            passed = status == 200 and (body.get("decision"), got) == want
            ok &= passed
            face = (body.get("faces") or [{}])[0]
            rows.append((path.name, expected or "(stranger)", f"{status} {body.get('decision', body.get('error'))}",
                         got, face.get("distance"), body.get("threshold"), body.get("latency_ms"), wall, passed))
        print_table(rows)
        print("SMOKE OK" if ok else "SMOKE FAILED")
        return 0 if ok else 1
    finally:
        if not args.keep:
            for pid in created_people:
                api.call("DELETE", f"/api/v1/people/{pid}/")
            api.call("DELETE", f"/api/v1/sites/{site['id']}/")


def print_table(rows: list[tuple]) -> None:
    head = ("probe", "expected", "answer", "person", "distance", "threshold", "worker ms", "round trip ms", "")
    fmt = "{:<24} {:<14} {:<14} {:<14} {:>8} {:>9} {:>9} {:>13}  {}"
    print(fmt.format(*head))
    for probe, expected, answer, person, dist, thr, latency, wall, passed in rows:
        print(fmt.format(probe, expected, answer, person,
                         "-" if dist is None else f"{dist:.3f}", "-" if thr is None else f"{thr:.3f}",
                         "-" if latency is None else f"{latency:.0f}", f"{wall:.0f}", "ok" if passed else "FAIL"))


if __name__ == "__main__":
    sys.exit(main())
