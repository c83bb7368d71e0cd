"""The camera bridge against real streams: its own `make run` (temp data dir, free ports, the bridge the runner
starts), LFW people enrolled, and H.264 clips made with Debian's ffmpeg served by GStreamer's RTSP server.

    .venv/bin/python bench/bridge_bench.py                  # 8 people walking in, CPU at 640x480 and 1080p, a drop
    .venv/bin/python bench/bridge_bench.py --people 12 --json out/bridge_bench.json

Reports:
- time from the first frame with the face (the stream's start, as the RTSP server says, + the empty seconds) to the
  decision (the granted event's ``processed_at``), p50 / p95, 640x480 at 5 frames/s looked at;
- snapshots posted per person (events of the camera during each walk-in);
- the bridge process's CPU (per cent of one core, /proc) with one idle stream (an empty door) and one busy stream
  (a face moving all the time, cooldown 0: the bridge posts all along), at 640x480 and 1920x1080, 10 frames/s;
- a drop: the RTSP server killed after a grant and back 5 s later: time from its return to the stream playing
  again, and the grants and posts after it (the cooldown: none expected).

Needs ffmpeg, python3-gi and gir1.2-gst-rtsp-server-1.0 (``make test-tools`` installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import cv2  # noqa: E402
from latency_bench import DEFAULT_LFW, HttpClient, set_up_door  # noqa: E402
from own_runner import OwnRunner, child_pids, command_line  # noqa: E402

from faceaccess.embedded import free_port  # noqa: E402
from tests.tools.streams import RtspServer, door, need_rtsp_tools, walkin_clip, with_face  # noqa: E402

# The face appears this long after the stream starts: past the stream's opening (FFmpeg's probing of a fresh RTSP
# stream takes about 2 s here), as at a real door where the bridge has been watching long before anybody comes.
EMPTY_S = 6.0
TICK = os.sysconf("SC_CLK_TCK")


def moving_face_clip(out: Path, face_path: Path, size: tuple[int, int], seconds: float, fps: int = 10) -> Path:
    """A face that moves all the time (the motion gate always open): the bridge's busy case."""
    import subprocess

    frames = out.with_suffix(".frames")
    frames.mkdir(parents=True, exist_ok=True)
    base = with_face(door(size), face_path, 0.5)
    w = size[0]
    for i in range(int(seconds * fps)):
        shift = int((i % 20 - 10) * w / 100)
        cv2.imwrite(str(frames / f"{i:05d}.png"), cv2.warpAffine(base, _shift(shift), size))
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-framerate", str(fps), "-i", str(frames / "%05d.png"),
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", str(fps), str(out)],
                   check=True)
    shutil.rmtree(frames)
    return out


def _shift(dx: int):
    import numpy as np

    return np.float32([[1, 0, dx], [0, 1, 0]])


def bridge_pid(runner: OwnRunner) -> int:
    for pid in child_pids(runner.proc.pid):
        if "run_bridge" in command_line(pid):
            return pid
    raise SystemExit("the runner started no camera bridge")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def playing_times(log: Path, mount: str) -> list[float]:
    return [float(t) for t in re.findall(rf"^PLAYING {re.escape(mount)} ([0-9.]+)$", log.read_text(), re.M)]


def wait_for(what, timeout: float, why: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.2)
    raise RuntimeError(f"timed out: {why}")


def events(admin: HttpClient, camera: int) -> list[dict]:
    return admin.ok("GET", f"/api/v1/events/?camera={camera}&page_size=500")["results"]


def point_camera(admin: HttpClient, camera: int, rtsp: RtspServer, mount: str, **fields) -> float:
    """Point the camera at ``mount``; returns when the bridge's new client started playing it (time.time())."""
    before = len(playing_times(rtsp.log, mount))
    admin.ok("PATCH", f"/api/v1/cameras/{camera}/", {"stream_url": rtsp.url(mount), **fields})
    wait_for(lambda: len(playing_times(rtsp.log, mount)) > before, 60, f"the bridge never played {mount}")
    return playing_times(rtsp.log, mount)[before]


def iso_time(text: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--people", type=int, default=8)
    p.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    p.add_argument("--cpu-seconds", type=float, default=15.0, help="the CPU measurement window per stream")
    p.add_argument("--json", type=Path)
    p.add_argument("--keep", action="store_true", help="keep the runner's temp dir")
    args = p.parse_args(argv)
    need_rtsp_tools()
    work = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    runner = OwnRunner(threads=8, prefix="bridge-bench-runner-")
    rtsp = None
    try:
        runner.wait_up()
        pid = bridge_pid(runner)
        admin = HttpClient(runner.base, "")
        token = admin.ok("POST", "/api/v1/auth/token/", {"username": "admin", "password": runner.password})["token"]
        admin.auth = f"Token {token}"
        print("enrolling LFW people...", flush=True)
        door_ = set_up_door(admin, args.lfw, args.people)
        camera = door_.cameras[0]["id"]
        walkers = []
        for probe in [p for p in door_.probes if p.person_id is not None]:
            if probe.person_id not in {w[1] for w in walkers}:
                walkers.append((probe, probe.person_id))
        walkers = walkers[:args.people]
        clips = {}
        for i, (probe, _) in enumerate(walkers):
            face = work / f"{i}.jpg"
            face.write_bytes(probe.raw)
            clips[f"walk{i}"] = walkin_clip(work / f"walk{i}.mp4", face, empty_s=EMPTY_S, face_s=6.0)
        face0 = work / "0.jpg"
        clips["drop"] = walkin_clip(work / "drop.mp4", work / f"{len(walkers) - 1}.jpg", empty_s=EMPTY_S, face_s=25.0)
        for name, size in (("640x480", (640, 480)), ("1080p", (1920, 1080))):
            clips[f"idle-{name}"] = walkin_clip(work / f"idle-{name}.mp4", face0, size=size, empty_s=40.0,
                                                face_s=0.1)
            clips[f"busy-{name}"] = moving_face_clip(work / f"busy-{name}.mp4", face0, size, 40.0)
        rtsp = RtspServer(free_port(), clips, work / "rtsp.log").start()
        common = {"stream_fps": 5, "motion_threshold": 1.0, "grant_cooldown_seconds": 60}

        print("people walking in...", flush=True)
        latencies, posts, splits = [], [], []
        for i, (_, person) in enumerate(walkers):
            started = point_camera(admin, camera, rtsp, f"walk{i}", **common)
            face_at = started + EMPTY_S
            granted = wait_for(lambda p=person, t=started: [e for e in events(admin, camera) if e["decision"] ==
                                                            "granted" and e["person"] == p
                                                            and iso_time(e["received_at"]) > t],
                               30, f"walk-in {i} was never granted")
            event = granted[-1]
            latencies.append((iso_time(event["processed_at"]) - face_at) * 1000.0)
            # Where the time went: the face to the frame the bridge chose to post from (the stream's opening, the
            # sampling, the motion gate), that frame to the server's intake (the burst, the upload), the server.
            splits.append({"face_to_motion_frame": (iso_time(event["captured_at"]) - face_at) * 1000.0,
                           "motion_frame_to_intake": (iso_time(event["received_at"])
                                                      - iso_time(event["captured_at"])) * 1000.0,
                           "intake_to_decision": (iso_time(event["processed_at"])
                                                  - iso_time(event["received_at"])) * 1000.0})
            time.sleep(max(0.0, started + EMPTY_S + 6.0 - time.time()))  # the clip's end: every post counted
            posts.append(len([e for e in events(admin, camera) if iso_time(e["received_at"]) > started]))
            print(f"  walk-in {i}: decided {latencies[-1]:.0f} ms after the face appeared, {posts[-1]} posted",
                  flush=True)

        print("bridge CPU...", flush=True)
        cpu = {}
        for case in ("idle-640x480", "busy-640x480", "idle-1080p", "busy-1080p"):
            fields = {"stream_fps": 10, "motion_threshold": 1.0,
                      "grant_cooldown_seconds": 0 if case.startswith("busy") else 60}
            point_camera(admin, camera, rtsp, case, **fields)
            time.sleep(5.0)  # past the stream's opening
            c0, t0 = cpu_seconds(pid), time.monotonic()
            n0 = len(events(admin, camera))
            time.sleep(args.cpu_seconds)
            c1, t1 = cpu_seconds(pid), time.monotonic()
            cpu[case] = {"cpu_percent_of_one_core": round((c1 - c0) / (t1 - t0) * 100.0, 1),
                         "posted": len(events(admin, camera)) - n0}
            print(f"  {case}: {cpu[case]['cpu_percent_of_one_core']}% of one core, {cpu[case]['posted']} posted",
                  flush=True)

        print("a dropped stream...", flush=True)
        time.sleep(10.0)  # the busy streams' posts are decided before the next case starts
        started = point_camera(admin, camera, rtsp, "drop", **common)
        wait_for(lambda: [e for e in events(admin, camera) if e["decision"] == "granted"
                          and iso_time(e["received_at"]) > started], 30, "the drop clip was never granted")
        time.sleep(1.0)
        rtsp.stop()
        time.sleep(5.0)
        plays = len(playing_times(rtsp.log, "drop"))
        back = time.time()
        rtsp.start()
        wait_for(lambda: len(playing_times(rtsp.log, "drop")) > plays, 60, "the bridge never reconnected")
        reconnect_s = playing_times(rtsp.log, "drop")[plays] - back
        time.sleep(EMPTY_S + 5.0)
        after = [e for e in events(admin, camera) if iso_time(e["received_at"]) > back]
        granted_total = [e for e in events(admin, camera) if e["decision"] == "granted"
                         and iso_time(e["received_at"]) > started]
        keys = [e["idempotency_key"] for e in events(admin, camera)]
        drop = {"reconnect_seconds_after_return": round(reconnect_s, 2), "posted_after_return": len(after),
                "decisions_after_return": [e["decision"] for e in after],
                "grants_of_the_person": len(granted_total), "duplicate_keys": len(keys) - len(set(keys))}
        status = admin.ok("GET", f"/api/v1/cameras/{camera}/")["stream_status"]

        result = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
            "walk_ins": len(latencies),
            "face_to_decision_ms": {"p50": round(statistics.median(latencies), 0),
                                    "p95": round(sorted(latencies)[max(0, int(len(latencies) * 0.95 + 0.5) - 1)], 0),
                                    "all": [round(v) for v in latencies]},
            "split_medians_ms": {k: round(statistics.median(x[k] for x in splits)) for k in splits[0]},
            "posted_per_person": {"mean": round(statistics.mean(posts), 2), "max": max(posts), "all": posts},
            "cpu": cpu, "drop": drop, "reconnects_reported": status["reconnects"] if status else None,
        }
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2))
        return 0
    finally:
        if rtsp is not None:
            rtsp.stop()
        runner.stop(keep=args.keep)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
