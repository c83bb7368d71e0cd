"""Engine speed: detection at 640x480, embedding per face at batch 1 and 32,
and a whole snapshot (JPEG decode + detect + align + embed, one face).

    python bench/engine_bench.py [--threads 2] [--repeat 30] [--json out/engine_bench.json]

Prints a table of medians (and p90) per device and model, and writes JSON.
Needs the weights cache (python -m recognition.engine fetch-weights).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recognition.engine import load_image, registry  # noqa: E402
from recognition.engine.pipeline import Pipeline  # noqa: E402

LFW_FACE = ROOT.parent / "shared" / "datasets" / "lfw" / "images" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"


def snapshot_jpeg() -> bytes:
    """A 640x480 door-camera-like JPEG with one face (an LFW photo scaled into
    a grey scene), or random texture when LFW is not beside the repo."""
    canvas = Image.new("RGB", (640, 480), (120, 124, 118))
    if LFW_FACE.is_file():
        face = Image.open(LFW_FACE).convert("RGB").resize((300, 300))
        canvas.paste(face, (170, 90))
    else:
        canvas = Image.fromarray(np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def timed(fn, repeat: int, warmup: int = 3, sync=None) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summary(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"median_ms": statistics.median(s), "p90_ms": s[int(0.9 * (len(s) - 1))], "n": len(s)}


def bench_device(device: str, repeat: int, fp16: bool) -> list[dict]:
    rows = []
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    jpeg = snapshot_jpeg()
    image = load_image(jpeg)
    for name in [n for n in registry.EMBEDDERS if registry.get_spec(n).pretrained]:
        pipe = Pipeline.load(embedder=name, device=device, fp16=fp16)
        faces = pipe.faces([image], return_crops=True)[0]
        if not faces:
            raise SystemExit("the benchmark image has no detectable face")
        crop = faces[0].crop
        tag = f"{device}{' fp16' if fp16 and device != 'cpu' else ''}"
        if name == registry.default_embedder_name() or not rows:
            rows.append({"device": tag, "what": "detect 640x480", "model": registry.DETECTOR.name,
                         **summary(timed(lambda pipe=pipe: pipe.detect([image]), repeat, sync=sync))})
        for batch in (1, 32):
            crops = np.stack([crop] * batch)
            reps = max(5, repeat // (4 if batch > 1 else 1))
            s = summary(timed(lambda crops=crops, pipe=pipe: pipe.embed_crops(crops), reps, sync=sync))
            s = {k: (v / batch if k != "n" else v) for k, v in s.items()}
            rows.append({"device": tag, "what": f"embed per face, batch {batch}", "model": name, **s})
        rows.append({"device": tag, "what": "whole snapshot (decode+detect+align+embed)", "model": name,
                     "default": name == registry.default_embedder_name(),
                     **summary(timed(lambda pipe=pipe: pipe.faces([load_image(jpeg)]), repeat, sync=sync))})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--fp16", action="store_true", help="half precision on CUDA")
    parser.add_argument("--json", default=str(ROOT / "out" / "engine_bench.json"))
    parser.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and not args.cpu_only else [])
    rows = []
    for dev in devices:
        rows += bench_device(dev, args.repeat, fp16=args.fp16 and dev == "cuda")
    print(f"{'device':10s} {'model':22s} {'what':44s} {'median ms':>10s} {'p90 ms':>8s}")
    for r in rows:
        print(f"{r['device']:10s} {r['model']:22s} {r['what']:44s} {r['median_ms']:10.2f} {r['p90_ms']:8.2f}")
    meta = {
        "threads": args.threads,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
