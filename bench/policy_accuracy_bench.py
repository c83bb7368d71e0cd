"""Does a cheaper detection policy cost recognition accuracy? LFW verification on door-sized snapshots.

    .venv/bin/python bench/policy_accuracy_bench.py [--policy standard --policy close] [--threads 2]

Every image of LFW's View 1 test pairs (``pairsDevTest.txt``, 500 same + 500 different people) is pasted at a
random, seeded position onto a 640x480 grey frame, as a door camera would send a face of ~100 px; each policy
detects it, the face nearest the paste's centre is aligned and embedded by the default pipeline, and the pairs
are scored with 10-fold accuracy (threshold chosen on the other folds). Also reported: how far each policy's
embedding of an image lies from the first policy's (median and 95th percentile of the Euclidean distance), next
to the same figure for the frame shifted by 5 px under the first policy, the pipeline's own noise floor.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from recognition.engine import evaluation as ev
from recognition.engine.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]


def frame_with(image: np.ndarray, x: int, y: int) -> np.ndarray:
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[y : y + image.shape[0], x : x + image.shape[1]] = image
    return frame


def nearest_embedding(pipe: Pipeline, frame: np.ndarray, centre_x: float, policy: str | None) -> np.ndarray | None:
    faces = pipe.faces([frame], detection=policy)[0]
    if not faces:
        return None
    centres = np.array([(f.box[0] + f.box[2]) / 2 for f in faces])
    return faces[int(np.argmin(np.abs(centres - centre_x)))].embedding


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lfw-dir", type=Path, default=REPO.parent / "shared" / "datasets" / "lfw")
    p.add_argument("--policy", action="append", help="detection policies (default: standard, close)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=REPO / "out" / "policy_accuracy_bench.json")
    args = p.parse_args()
    policies = args.policy or ["standard", "close"]
    torch.set_num_threads(args.threads)
    pipe = Pipeline.load()
    pairs = ev.read_pairs(args.lfw_dir / "pairsDevTest.txt", args.lfw_dir)
    images = sorted(set(pairs.left) | set(pairs.right))
    rng = np.random.default_rng(args.seed)
    where = {path: (int(rng.integers(0, 640 - 255)), int(rng.integers(0, 480 - 253))) for path in images}
    embeddings: dict[str, dict[Path, np.ndarray | None]] = {}
    shifted: dict[Path, np.ndarray | None] = {}
    report: dict = {"pairs": len(pairs.same), "images": len(images), "policies": {}}
    for policy in policies:
        started, found = time.time(), {}
        for path in images:
            photo = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            x, y = where[path]
            found[path] = nearest_embedding(pipe, frame_with(photo, x, y), x + 125, policy)
            if policy == policies[0]:
                shifted[path] = nearest_embedding(pipe, frame_with(photo, x + 5, y + 3), x + 130, policy)
        embeddings[policy] = found
        dist = np.array([np.linalg.norm(found[a] - found[b]) if found[a] is not None and found[b] is not None else 2.0
                         for a, b in zip(pairs.left, pairs.right, strict=True)])
        acc = ev.kfold_accuracy(dist, pairs.same, pairs.fold)
        entry = {"accuracy": acc["accuracy_mean"], "accuracy_std": acc["accuracy_std"],
                 "no_face": sum(v is None for v in found.values()), "seconds": round(time.time() - started, 1)}
        first = embeddings[policies[0]]
        both = [(first[k], found[k]) for k in images if first[k] is not None and found[k] is not None]
        d = np.array([np.linalg.norm(a - b) for a, b in both])
        entry["distance_to_first_policy"] = {"median": float(np.median(d)), "p95": float(np.percentile(d, 95))}
        report["policies"][policy] = entry
        print(f"{policy:12s} accuracy {100 * entry['accuracy']:.2f}% (std {100 * entry['accuracy_std']:.2f}), "
              f"no face {entry['no_face']}, embedding distance to {policies[0]}: median "
              f"{entry['distance_to_first_policy']['median']:.3f}, p95 {entry['distance_to_first_policy']['p95']:.3f}"
              f" ({entry['seconds']} s)", flush=True)
    both = [(embeddings[policies[0]][k], shifted[k]) for k in images
            if embeddings[policies[0]][k] is not None and shifted[k] is not None]
    d = np.array([np.linalg.norm(a - b) for a, b in both])
    report["noise_floor_5px_shift"] = {"median": float(np.median(d)), "p95": float(np.percentile(d, 95))}
    print(f"noise floor ({policies[0]}, the frame shifted by 5 px): median {np.median(d):.3f}, "
          f"p95 {np.percentile(d, 95):.3f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
