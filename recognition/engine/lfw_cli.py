"""The ``eval-lfw`` command: figures, JSON and plot."""

from __future__ import annotations

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
