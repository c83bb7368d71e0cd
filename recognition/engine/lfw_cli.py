"""The ``eval-lfw`` command: figures, JSON and plot."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from . import evaluation as ev


def run_eval_lfw(args) -> int:
    from .pipeline import Pipeline

    root = Path(args.lfw_dir)
    pairs_file = Path(args.pairs) if args.pairs else root / "pairs.txt"
    if not pairs_file.is_file() or not (root / "images").is_dir():
        print(f"error: {root} needs images/ and {pairs_file.name}", file=sys.stderr)
        return 2
    pairs = ev.read_pairs(pairs_file, root)
    pipe = Pipeline.load(embedder=args.model, device=args.device)
    images = sorted(set(pairs.images) | set(ev.identification_images(root))) if args.identification else pairs.images
    cache = Path(args.cache_dir) if args.cache_dir else None
    result: dict = {
        "model": pipe.embedder_name,
        "version": pipe.embedder_version,
        "device": str(pipe.device),
        "pairs_file": pairs_file.name,
    }
    title = f"LFW {pairs_file.name}: {pipe.embedder_name} ({pipe.embedder_version})"
    det = ev.cached_detections(pipe, images, cache)
    for flip in [False] if args.no_flip else [False, True]:
        label = "flip_tta" if flip else "plain"
        t0 = time.perf_counter()
        # Flip TTA only matters for the pairs; identification uses the plain run.
        emb = ev.cached_embeddings(pipe, det if not flip else det.subset(pairs.images), flip, cache)
        report = ev.verification_report(emb, pairs)
        report["seconds"] = round(time.perf_counter() - t0, 1)
        result[label] = ev.public(report)
        print(
            f"{label:9s} accuracy {100 * report['accuracy_mean']:.2f}% ± {100 * report['accuracy_std']:.2f}  "
            f"AUC {report['auc']:.4f}  threshold {report['threshold_all']:.3f}  "
            f"detection failures {report['detection_failures']}/{report['images']} "
            f"({100 * report['detection_failure_rate']:.2f}%)"
        )
        if args.plot and not flip:
            ev.plot_verification(report, pairs.same, Path(args.plot), f"{title}, no TTA")
        if args.identification and not flip:
            ident = ev.identification_report(emb, root, far=args.far)
            ident["stranger_accept_rate_at_pair_threshold"] = ev.stranger_accept_rate(
                emb, root, report["threshold_all"]
            )
            result["identification"] = ident
            print(
                f"identification: gallery {ident['gallery_people']} people, {ident['genuine_probes']} genuine "
                f"probes; at FAR {100 * ident['target_far']:.1f}% (threshold {ident['threshold']:.3f}; "
                f"check-set FAR {100 * ident['far_check']:.2f}%) genuine accepted "
                f"{100 * ident['genuine_accept_rate']:.1f}%, rank-1 {100 * ident['rank1_accuracy']:.1f}%; "
                f"the pair threshold {report['threshold_all']:.3f} lets in "
                f"{100 * ident['stranger_accept_rate_at_pair_threshold']:.1f}% of strangers"
            )
    if args.json:
        ev.write_json(result, Path(args.json))
        print(f"figures written to {args.json}")
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


# ------------------------------------------------ identification options (issue 11)

TTA_SETTINGS = {
    # name: (gallery embeddings, probe embeddings)
    "none": ("plain", "plain"),
    "enrol": ("flip", "plain"),  # flip TTA at enrolment only: free at the door
    "probe": ("plain", "flip"),
    "both": ("flip", "flip"),
}


def add_options_arguments(p) -> None:
    """The identification-options flags (also usable on another parser)."""
    p.add_argument("--lfw-dir", required=True, help="folder with images/")
    p.add_argument("--model", default="sface", help="embedder (default: %(default)s)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache-dir", help="detections and embeddings cache (reused, never recomputed)")
    p.add_argument("--tta", nargs="+", default=list(TTA_SETTINGS), choices=list(TTA_SETTINGS),
                   help="flip TTA: none, enrol (gallery only), probe (door only), both")
    p.add_argument("--enrol", nargs="+", type=int, default=[1, 3, 5],
                   help="up to K enrolment photos per person (1 = the original protocol)")
    p.add_argument("--min-photos", type=int, default=2,
                   help="gallery: only people with at least this many LFW photos (2: the protocol's 1,680 people; "
                   "K+1: everybody has K enrolment photos)")
    p.add_argument("--template", nargs="+", default=["photos", "mean", "photos+mean"],
                   help="person template: photos (min over photos), mean, photos+mean")
    p.add_argument("--rule", nargs="+", default=["plain", "ratio", "margin"], choices=["plain", "ratio", "margin"],
                   help="acceptance rule: plain threshold, runner-up ratio, runner-up margin")
    p.add_argument("--ratio", type=float, nargs="+", help="ratio grid (default 0.50..1.00 by 0.01)")
    p.add_argument("--far", type=float, nargs="+", default=[0.01, 0.001], help="target stranger false-accept rates")
    p.add_argument("--cost", action="store_true", help="also time a 640x480 snapshot with and without flip TTA")
    p.add_argument("--threads", type=int, default=2, help="torch threads for --cost")
    p.add_argument("--json", help="write every figure here")


def run_identification_options(args) -> int:
    from .pipeline import Pipeline

    root = Path(args.lfw_dir)
    if not (root / "images").is_dir():
        print(f"error: {root} needs images/", file=sys.stderr)
        return 2
    pipe = Pipeline.load(embedder=args.model, device=args.device)
    cache = Path(args.cache_dir) if args.cache_dir else None
    images = ev.options_images(root, max(args.enrol))
    det = ev.cached_detections(pipe, images, cache)
    needed = {m for t in args.tta for m in TTA_SETTINGS[t]}
    emb = {m: ev.cached_embeddings(pipe, det, m, cache) for m in ("plain", "flip") if m in needed}
    rows = []
    print(f"{'tta':5s} {'K':>2s} {'template':11s} {'rule':6s} {'FAR':>5s} | {'rule chosen on the threshold set':36s} | "
          f"{'FAR chk':>7s} {'GA chk':>6s} {'GA all':>6s} {'rank1':>6s} {'wrong':>6s}")
    for tta in args.tta:
        g_mode, p_mode = TTA_SETTINGS[tta]
        for k in args.enrol:
            for mode in args.template if k > 1 else ["photos"]:
                scores = ev.identification_scores(emb[g_mode], emb[p_mode], root, enrol=k, mode=mode,
                                                  min_photos=args.min_photos)
                for kind in args.rule:
                    for far in args.far:
                        r = ev.option_report(scores, far=far, kind=kind, grid=args.ratio if kind == "ratio" else None)
                        r.update({"model": pipe.embedder_name, "tta": tta, "enrol": k, "template": mode,
                                  "min_photos": args.min_photos})
                        rows.append(r)
                        print(f"{tta:5s} {k:2d} {mode:11s} {kind:6s} {100 * far:4.1f}% | {r['describe']:36s} | "
                              f"{100 * r['far_check']:6.2f}% {100 * r['genuine_accept_check']:5.1f}% "
                              f"{100 * r['genuine_accept_all']:5.1f}% {100 * r['rank1_all']:5.1f}% "
                              f"{100 * r['genuine_wrong_accept_all']:5.2f}%", flush=True)
    result = {"model": pipe.embedder_name, "version": pipe.embedder_version, "options": rows}
    if args.cost:
        result["cost"] = snapshot_cost(pipe, threads=args.threads)
        print(json.dumps(result["cost"], indent=2))
    if args.json:
        ev.write_json(result, Path(args.json))
        print(f"figures written to {args.json}")
    return 0


def snapshot_jpeg(lfw_root: Path) -> bytes:
    """The engine bench's door snapshot: 640x480 grey scene, one LFW face scaled to 300x300."""
    import io

    from PIL import Image

    canvas = Image.new("RGB", (640, 480), (120, 124, 118))
    face = Image.open(Path(lfw_root) / "images" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg").convert("RGB")
    canvas.paste(face.resize((300, 300)), (170, 90))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def snapshot_cost(pipe, threads: int = 2, repeat: int = 40, lfw_root: Path = Path("../shared/datasets/lfw")) -> dict:
    """Median ms of a whole snapshot (decode + detect + align + embed, one face)
    with and without flip TTA, and of the detection and embedding calls alone.
    Wall-clock ms (what the door waits;
    inflated when other processes share the cores) and process CPU ms (the
    work, robust to sharing when ``threads`` is 1)."""
    import statistics

    import numpy as np
    import torch

    from .images import load_image

    torch.set_num_threads(threads)
    jpeg = snapshot_jpeg(lfw_root)

    def timed(fn) -> tuple[float, float]:
        for _ in range(3):
            fn()
        wall, cpu = [], []
        for _ in range(repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall.append((time.perf_counter() - w0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        return round(statistics.median(wall), 2), round(statistics.median(cpu), 2)

    image = load_image(jpeg)
    crop = pipe.faces([image], return_crops=True)[0][0].crop
    mirrored = np.ascontiguousarray(crop[:, ::-1])
    cases = {
        "snapshot": lambda: pipe.faces([load_image(jpeg)], flip_tta=False),
        "snapshot_flip_tta": lambda: pipe.faces([load_image(jpeg)], flip_tta=True),
        "detect": lambda: pipe.detect([image]),
        "embed_face": lambda: pipe.embed_crops([crop]),
        "embed_face_then_mirror": lambda: (pipe.embed_crops([crop]), pipe.embed_crops([mirrored])),
        "embed_face_and_mirror_batch2": lambda: pipe.embed_crops([crop, mirrored]),
    }
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
    # Interleave the cases, several rounds, so that load from other processes hits all alike.
    for _ in range(5):
        for name, fn in cases.items():
            samples[name].append(timed(fn))
    out: dict = {"threads": threads, "repeat": repeat, "rounds": 5}
    for name, got in samples.items():
        out[f"{name}_wall_ms"] = statistics.median(w for w, _ in got)
        out[f"{name}_cpu_ms"] = statistics.median(c for _, c in got)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m recognition.engine.lfw_cli``: the identification options table."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m recognition.engine.lfw_cli",
                                description="LFW identification options: TTA, person template, runner-up rules")
    add_options_arguments(p)
    return run_identification_options(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
