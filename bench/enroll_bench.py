"""Enrollment photos with several faces: how many LFW first photos enroll, and is the face taken the right one.

    nice -n 10 .venv/bin/python bench/enroll_bench.py [--lfw-dir ../shared/datasets/lfw] [--threads 2]
        [--cache-dir out/enroll-bench] [--json out/enroll_bench.json]

For every LFW person with >= 2 photos (1,680 people) the real pipeline (RetinaFace -> alignment -> the
current default embedder, the worker's `Pipeline.faces`) runs on the person's first and second photo;
every detected face is kept with its box, score and embedding in ``--cache-dir`` (a re-run only reads
the cache). Then, with the worker's own code (``enrollment.dominant``: the usable-face minimums of
FACEACCESS_ENROLL_MIN_FACE_PX / _MIN_SCORE and the dominant-face rule):

- before: the old rule, a first photo enrolls when it has exactly one usable face;
- after: it also enrolls when one of its usable faces dominates (``dominant_face``);
- right person: for each first photo with several usable faces where the rule takes one, the taken
  face's embedding must be nearer the second photo's face (the face nearest the centre there: LFW's
  photos are centred on the labelled person) than every other usable face of the first photo is.

It also prints the same figures for the two halves of the rule alone and for a few other thresholds,
so that the choice of the shipped ones can be checked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "faceaccess.settings")

CACHE_VERSION = "1"


def people_with_two(lfw: Path) -> list[tuple[str, Path, Path]]:
    out = []
    for person in sorted(p for p in (lfw / "images").iterdir() if p.is_dir()):
        photos = sorted(person.glob("*.jpg"))
        if len(photos) >= 2:
            out.append((person.name, photos[0], photos[1]))
    return out


def collect(paths: list[Path], cache_dir: Path, threads: int, batch: int = 16) -> dict[str, dict]:
    """Every face of every image: {path: {"shape", "boxes", "scores", "landmarks", "embeddings"}} (cached)."""
    import torch

    from recognition.engine import Pipeline, load_image, registry

    spec = registry.get_spec(registry.default_embedder_name())
    cache = cache_dir / f"faces-{spec.name}-{spec.version}-v{CACHE_VERSION}.npz"
    done: dict[str, dict] = {}
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        starts = np.concatenate([[0], np.cumsum(z["counts"])])
        for i, p in enumerate(z["paths"].tolist()):
            s, e = starts[i], starts[i + 1]
            done[p] = {"shape": tuple(int(v) for v in z["shapes"][i]), "boxes": z["boxes"][s:e],
                       "scores": z["scores"][s:e], "landmarks": z["landmarks"][s:e], "embeddings": z["embeddings"][s:e]}
    todo = [p for p in paths if str(p) not in done]
    if not todo:
        return done
    torch.set_num_threads(threads)
    pipe = Pipeline.load(device="cpu")
    started = time.monotonic()
    for n in range(0, len(todo), batch):
        chunk = todo[n : n + batch]
        images = [load_image(p) for p in chunk]
        for p, image, faces in zip(chunk, images, pipe.faces(images, embed=True), strict=True):
            done[str(p)] = {
                "shape": (int(image.shape[0]), int(image.shape[1])),
                "boxes": np.array([f.box for f in faces], np.float32).reshape(-1, 4),
                "scores": np.array([f.score for f in faces], np.float32),
                "landmarks": np.array([f.landmarks for f in faces], np.float32).reshape(-1, 5, 2),
                "embeddings": np.array([f.embedding for f in faces], np.float32).reshape(-1, 128),
            }
        if (n // batch) % 20 == 0 or n + batch >= len(todo):
            _save(cache, done)
            rate = (n + len(chunk)) / (time.monotonic() - started)
            print(f"  {n + len(chunk)}/{len(todo)} images, {rate:.1f} img/s", file=sys.stderr, flush=True)
    return done


def _save(cache: Path, done: dict[str, dict]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted(done)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(
        tmp, paths=np.array(keys), counts=np.array([len(done[k]["scores"]) for k in keys], np.int64),
        shapes=np.array([done[k]["shape"] for k in keys], np.int64).reshape(-1, 2),
        boxes=np.concatenate([done[k]["boxes"] for k in keys]),
        scores=np.concatenate([done[k]["scores"] for k in keys]),
        landmarks=np.concatenate([done[k]["landmarks"] for k in keys]),
        embeddings=np.concatenate([done[k]["embeddings"] for k in keys]),
    )
    tmp.replace(cache)


def nearest_centre(boxes: np.ndarray, shape: tuple[int, int]) -> int:
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    target = np.array([shape[1] / 2.0, shape[0] / 2.0])
    return int(np.argmin(np.linalg.norm(centres - target, axis=1)))


def kind(reason: str) -> str:
    if reason.startswith("largest face"):
        return "size"
    if reason.startswith("the face nearest the centre"):
        return "centre"
    return "none"


def evaluate(people: list[tuple[str, Path, Path]], faces: dict[str, dict], min_px: float, min_score: float) -> dict:
    from enrollment.dominant import dominant_face, face_size

    before = after = no_face = 0
    several, taken, wrong, undecided, no_reference = [], [], [], [], []
    always_largest = always_centre = 0
    for name, first, second in people:
        f = faces[str(first)]
        usable = [i for i in range(len(f["scores"]))
                  if face_size(f["boxes"][i]) >= min_px and f["scores"][i] >= min_score]
        if not usable:
            no_face += 1
            continue
        if len(usable) == 1:
            before += 1
            after += 1
            continue
        height, width = f["shape"]
        choice = dominant_face([[float(v) for v in f["boxes"][i]] for i in usable], width, height)
        row = {"person": name, "usable_faces": len(usable), "rule": kind(choice.reason), "reason": choice.reason}
        several.append(row)
        if choice.index is not None:
            after += 1
        ref = faces[str(second)]
        if len(ref["scores"]) == 0:
            no_reference.append(name)
            continue
        anchor = ref["embeddings"][nearest_centre(ref["boxes"], ref["shape"])]
        dist = np.linalg.norm(f["embeddings"][usable] - anchor, axis=1)
        right = int(np.argmin(dist))
        row["distances"] = [round(float(d), 3) for d in dist]
        sizes = [face_size(f["boxes"][i]) for i in usable]
        always_largest += int(int(np.argmax(sizes)) == right)
        always_centre += int(nearest_centre(f["boxes"][usable], f["shape"]) == right)
        if choice.index is None:
            undecided.append(row)
            continue
        row["right"] = choice.index == right
        taken.append(row)
        if not row["right"]:
            wrong.append(row)
    n = len(people)
    judged = len(several) - len(no_reference)

    def share(k: int, of: int) -> float:
        return round(100.0 * k / of, 1) if of else 0.0

    by_rule = {r: {"taken": sum(1 for t in taken if t["rule"] == r),
                   "right": sum(1 for t in taken if t["rule"] == r and t["right"])} for r in ("size", "centre")}
    return {
        "people": n,
        "min_face_px": min_px,
        "min_score": min_score,
        "first_photos_no_usable_face": no_face,
        "first_photos_several_usable_faces": len(several),
        "enrolled_before": before,
        "enrolled_before_pct": share(before, n),
        "enrolled_after": after,
        "enrolled_after_pct": share(after, n),
        "several_faces_after": len(several) - (after - before),
        "dominant_taken": after - before,
        "dominant_taken_by_rule": by_rule,
        "right_person": sum(1 for t in taken if t["right"]),
        "right_person_of": len(taken),
        "right_person_pct": share(sum(1 for t in taken if t["right"]), len(taken)),
        "second_photo_without_face": no_reference,
        "alternatives_right_pct_of_several": {
            "always_the_largest": share(always_largest, judged),
            "always_nearest_the_centre": share(always_centre, judged),
        },
        "wrong": wrong,
        "undecided": undecided,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw-dir", type=Path, default=ROOT.parent / "shared" / "datasets" / "lfw")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "out" / "enroll-bench")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=ROOT / "out" / "enroll_bench.json")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from enrollment.embedding import enroll_minimums

    min_px, min_score = enroll_minimums()
    people = people_with_two(args.lfw_dir)
    if not people:
        parser.error(f"no LFW people with two photos under {args.lfw_dir / 'images'}")
    faces = collect([p for _, a, b in people for p in (a, b)], args.cache_dir, args.threads)
    report = evaluate(people, faces, min_px, min_score)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    r = report
    print(f"first photos of {r['people']} LFW people with >= 2 photos "
          f"(usable: >= {min_px:g} px, score >= {min_score:g})")
    print(f"  several usable faces: {r['first_photos_several_usable_faces']}, "
          f"no usable face: {r['first_photos_no_usable_face']}")
    print(f"  enroll before (exactly one usable face): {r['enrolled_before']} ({r['enrolled_before_pct']}%)")
    print(f"  enroll after (or a dominant face):        {r['enrolled_after']} ({r['enrolled_after_pct']}%); "
          f"still several_faces: {r['several_faces_after']}")
    rules = ", ".join(f"{k} {v['taken']} ({v['right']} right)" for k, v in r["dominant_taken_by_rule"].items())
    print(f"  dominant face taken: {r['dominant_taken']} by {rules}")
    print(f"  right person (nearest the second photo's face): {r['right_person']}/{r['right_person_of']} "
          f"({r['right_person_pct']}%)")
    alt = r["alternatives_right_pct_of_several"]
    print(f"  for comparison, on all photos with several usable faces: always the largest right "
          f"{alt['always_the_largest']}%, always the nearest the centre right {alt['always_nearest_the_centre']}%")
    for row in r["wrong"]:
        print(f"  WRONG {row['person']}: {row['reason']} {row['distances']}")
    print(f"  written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
