"""GPU readiness: one script for a machine with CUDA (under 5 minutes on a large GPU).

    .venv/bin/python bench/gpu_check.py                        # CUDA when present; writes out/gpu_check.json
    .venv/bin/python bench/gpu_check.py --cpu-only --quick     # the CPU part alone (what the test suite runs)

1. **Agreement on real photos**: LFW photos, raw 250x250 and pasted onto 640x480 frames. The CPU fp32 pipeline,
   one image per call, is the reference. Each candidate must find the same faces, with boxes within 1 px
   (largest coordinate difference) and embeddings with cosine >= 0.999: on CUDA the fp32 and fp16 pipelines
   in batches; everywhere the CPU pipeline in batches (what the batching worker does: one detector call over
   several images, padded to a common size, one embedder call over all their faces).
2. **Throughput** on the device: the detector alone (640x480 frames), the embedder alone (aligned crops) and
   whole snapshots (detect + align + embed, one face each), at batch 1 / 8 / 64 / 256 (``--batches``).
3. **The batching worker's decisions/s**: ``--threads`` camera threads, each decoding a real JPEG and handing
   it to :class:`recognition.pipelines.EngineBatcher` (what a ``-P threads`` worker's tasks do), with batching
   off (batch size 1) and on (``--max-batch``). Engine side only: the database part of a decision is
   measured by bench/load_bench.py against a running system.

Exit status 1 when an agreement check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from latency_bench import DEFAULT_LFW, on_canvas  # noqa: E402

BOX_TOLERANCE_PX = 1.0
MIN_COSINE = 0.999


def real_photos(lfw: Path, count: int) -> list[tuple[str, bytes]]:
    """``count`` LFW JPEGs of different people, spread over the alphabet: half raw, half on a 640x480 frame."""
    folders = sorted(p for p in (lfw / "images").iterdir() if p.is_dir())
    step = max(1, len(folders) // max(1, count))
    out = []
    for i, folder in enumerate(folders[::step][:count]):
        raw = sorted(folder.glob("*.jpg"))[0].read_bytes()
        out.append((f"{folder.name} {'640x480' if i % 2 else '250x250'}", on_canvas(raw, seed=i) if i % 2 else raw))
    return out


def faces_one_by_one(pipe, images: list[np.ndarray]) -> list[list]:
    return [pipe.faces([im])[0] for im in images]


def faces_batched(pipe, images: list[np.ndarray], batch: int, by_size: bool = True) -> list[list]:
    """Batches as the batching worker makes them (``by_size``: one detector call per image size), or padded to a
    common size (the engine's default for a mixed batch)."""
    out = []
    for i in range(0, len(images), batch):
        out += pipe.faces(images[i:i + batch], batch_by_size=by_size)
    return out


def compare(reference: list[list], candidate: list[list]) -> dict:
    """Same faces (count), boxes within BOX_TOLERANCE_PX, embedding cosine >= MIN_COSINE."""
    count_mismatch, worst_box, worst_cos, faces = 0, 0.0, 1.0, 0
    for ref, cand in zip(reference, candidate, strict=True):
        if len(ref) != len(cand):
            count_mismatch += 1
            continue
        for a, b in zip(ref, cand, strict=True):
            faces += 1
            worst_box = max(worst_box, float(np.max(np.abs(np.asarray(a.box) - np.asarray(b.box)))))
            cos = float(np.dot(a.embedding, b.embedding) / (np.linalg.norm(a.embedding) * np.linalg.norm(b.embedding)))
            worst_cos = min(worst_cos, cos)
    ok = count_mismatch == 0 and worst_box <= BOX_TOLERANCE_PX and worst_cos >= MIN_COSINE
    return {"images": len(reference), "faces": faces, "face_count_mismatches": count_mismatch,
            "max_box_diff_px": round(worst_box, 4), "min_cosine": round(worst_cos, 6), "pass": ok}


def timed(fn, seconds: float, sync) -> tuple[float, int]:
    """(median seconds per call, calls) over about ``seconds`` (at least 3 calls), after one warm-up call."""
    fn()
    sync()
    samples = []
    deadline = time.perf_counter() + seconds
    while len(samples) < 3 or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), len(samples)


def throughput(pipe, frames: list[np.ndarray], crops: np.ndarray, batches: list[int], seconds: float,
               sync) -> list[dict]:
    rows = []
    for batch in batches:
        images = [frames[i % len(frames)] for i in range(batch)]
        stack = np.stack([crops[i % len(crops)] for i in range(batch)])
        for what, fn, unit in (
            ("detector, 640x480", lambda images=images: pipe.detect(images), "images/s"),
            ("embedder, aligned crops", lambda stack=stack: pipe.embed_crops(stack), "faces/s"),
            ("whole snapshot, 640x480", lambda images=images: pipe.faces(images), "images/s"),
        ):
            per_call, calls = timed(fn, seconds, sync)
            rows.append({"what": what, "batch": batch, "ms_per_call": round(per_call * 1000.0, 3),
                         "per_s": round(batch / per_call, 1), "unit": unit, "calls": calls})
    return rows


def batching_worker(pipe, jpegs: list[bytes], threads: int, max_batch: int, wait_ms: float,
                    seconds: float) -> dict:
    """``threads`` camera threads, each: decode a JPEG, hand it to the batcher, repeat; decisions per second."""
    from recognition.engine import load_image
    from recognition.pipelines import EngineBatcher

    batcher = EngineBatcher(max_batch, wait_ms / 1000.0, pipeline=lambda: pipe)
    done = [0] * threads
    errors: list[str] = []
    stop = time.perf_counter() + seconds

    def camera(k: int) -> None:
        i = k
        while time.perf_counter() < stop:
            try:
                with batcher.ticket() as ticket:
                    ticket.faces(load_image(jpegs[i % len(jpegs)]))
                done[k] += 1
            except Exception as exc:  # reported, and the run goes on
                errors.append(f"{type(exc).__name__}: {exc}")
            i += threads

    workers = [threading.Thread(target=camera, args=(k,), daemon=True) for k in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 120)
    elapsed = time.perf_counter() - started
    sizes = batcher.batches
    return {"threads": threads, "max_batch": max_batch, "wait_ms": wait_ms, "decisions": sum(done),
            "decisions_per_s": round(sum(done) / elapsed, 1),
            "mean_batch": round(statistics.fmean(sizes), 2) if sizes else None, "errors": errors[:5]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lfw", type=Path, default=Path(os.environ.get("FACEACCESS_LFW", DEFAULT_LFW)))
    p.add_argument("--photos", type=int, default=64, help="real photos for the agreement checks")
    p.add_argument("--batches", default="1,8,64,256")
    p.add_argument("--seconds", type=float, default=3.0, help="per throughput figure")
    p.add_argument("--threads", default="1,16,64,256", help="camera threads of the batching worker runs")
    p.add_argument("--max-batch", type=int, default=64)
    p.add_argument("--wait-ms", type=float, default=5.0)
    p.add_argument("--cpu-threads", type=int, default=0, help="torch threads on the CPU (0: all cores)")
    p.add_argument("--cpu-only", action="store_true", help="skip CUDA even when present")
    p.add_argument("--quick", action="store_true",
                   help="small sizes for the CPU (8 photos, batches 1,8, 1 s figures, 1 and 4 threads)")
    p.add_argument("--json", type=Path, default=REPO / "out" / "gpu_check.json")
    args = p.parse_args(argv)
    if args.quick:
        args.photos, args.batches, args.seconds, args.threads, args.max_batch = 8, "1,8", 1.0, "1,4", 8

    import torch

    from recognition.engine import load_image
    from recognition.engine.pipeline import Pipeline

    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    cuda = torch.cuda.is_available() and not args.cpu_only
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    report: dict = {
        "torch": torch.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if cuda else None,
        "cuda_note": None if cuda else ("skipped (--cpu-only)" if torch.cuda.is_available()
                                        else "no CUDA device on this machine: CPU part only"),
        "checks": {}, "throughput": {}, "batching_worker": {},
    }
    t_start = time.perf_counter()
    photos = real_photos(args.lfw, args.photos)
    images = [load_image(data) for _, data in photos]
    cpu = Pipeline.load(device="cpu")
    reference = faces_one_by_one(cpu, images)
    report["photos"] = {"count": len(photos), "with_faces": sum(bool(r) for r in reference)}
    report["checks"]["cpu fp32, batches of 8 (mixed sizes)"] = compare(reference, faces_batched(cpu, images, 8))
    # Not a check: what padding mixed sizes to one detector input does (why the batching worker does not).
    report["padded_mixed_sizes"] = compare(reference, faces_batched(cpu, images, 8, by_size=False))
    same_size = [i for i, (name, _) in enumerate(photos) if name.endswith("640x480")]
    report["checks"]["cpu fp32, one batch of the 640x480 frames"] = compare(
        [reference[i] for i in same_size], faces_batched(cpu, [images[i] for i in same_size], len(same_size)))

    frames = [images[i] for i in same_size] or images
    crops = np.stack([f.crop for r in (cpu.faces(frames[:8], return_crops=True)) for f in r][:8]
                     or [np.zeros((112, 112, 3), np.uint8)])
    devices = [("cpu", cpu, lambda: None)]
    if cuda:
        for fp16 in (False, True):
            name = f"cuda {'fp16' if fp16 else 'fp32'}"
            pipe = Pipeline.load(device="cuda", fp16=fp16)
            report["checks"][f"{name}, one image per call"] = compare(reference, faces_one_by_one(pipe, images))
            report["checks"][f"{name}, batches of 64 (mixed sizes)"] = compare(reference,
                                                                                faces_batched(pipe, images, 64))
            devices.append((name, pipe, torch.cuda.synchronize))
    for name, pipe, sync in devices:
        sizes = batches if name != "cpu" or not cuda else [b for b in batches if b <= 8]
        report["throughput"][name] = throughput(pipe, frames, crops, sizes, args.seconds, sync)
    jpegs = [data for _, data in photos]
    for name, pipe, _ in devices[-1:]:  # the batching worker on the best device here
        runs = []
        for n in threads:
            for max_batch in (1, args.max_batch):
                runs.append(batching_worker(pipe, jpegs, n, max_batch, args.wait_ms, args.seconds))
        report["batching_worker"][name] = runs
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    ok = all(c["pass"] for c in report["checks"].values())
    report["pass"] = ok

    print(f"device: {report['cuda'] or 'CPU only'}{'' if cuda else ' (' + report['cuda_note'] + ')'}")
    print(f"\nagreement with the CPU fp32 pipeline, one image per call ({len(photos)} LFW photos)")
    for name, c in [*report["checks"].items(), ("(info) cpu, mixed sizes padded together", report[
            "padded_mixed_sizes"])]:
        print(f"  {name:48s} faces {c['faces']:4d}  count mismatches {c['face_count_mismatches']}  "
              f"max box diff {c['max_box_diff_px']:.3f} px  min cosine {c['min_cosine']:.6f}  "
              f"{'ok' if c['pass'] else 'FAIL'}")
    for name, rows in report["throughput"].items():
        print(f"\nthroughput, {name}")
        for r in rows:
            print(f"  {r['what']:26s} batch {r['batch']:4d}  {r['ms_per_call']:9.2f} ms/call  {r['per_s']:10.1f} "
                  f"{r['unit']}")
    for name, runs in report["batching_worker"].items():
        print(f"\nbatching worker (engine side), {name}")
        for r in runs:
            print(f"  {r['threads']:4d} cameras  max batch {r['max_batch']:4d}  {r['decisions_per_s']:9.1f} "
                  f"decisions/s  mean batch {r['mean_batch']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\n{'all checks passed' if ok else 'AGREEMENT CHECK FAILED'}; {report['seconds']} s; written {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
