"""LFW evaluation through the full pipeline (detect -> align -> embed).

Two protocols:
- *verification* on pairs files (View 2 ``pairs.txt`` or View 1
  ``pairsDevTest.txt``): k-fold accuracy with the threshold chosen on the other
  folds, ROC AUC, with and without flip test-time augmentation;
- *identification* (open set, the door's job): a gallery of one photo per
  person, genuine probes of gallery people, strangers who are not in it; the
  threshold is set on half of the strangers at a target false-accept rate and
  checked on the other half.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .images import load_image

# ---------------------------------------------------------------- LFW layout


def lfw_path(root: Path, name: str, number: int) -> Path:
    return Path(root) / "images" / name / f"{name}_{number:04d}.jpg"


@dataclass
class Pairs:
    left: list[Path]
    right: list[Path]
    same: np.ndarray  # (P,) bool
    fold: np.ndarray  # (P,) int

    def __len__(self) -> int:
        return len(self.left)

    @property
    def images(self) -> list[Path]:
        return sorted(set(self.left) | set(self.right))


def read_pairs(pairs_file: Path, lfw_root: Path) -> Pairs:
    """Parse ``pairs.txt`` (header ``10 300``: folds of 300 same + 300 different)
    or a View 1 file (header ``N``: N same then N different, one fold)."""
    lines = [ln.split() for ln in Path(pairs_file).read_text().splitlines() if ln.strip()]
    header, rows = lines[0], lines[1:]
    folds, per = (int(header[0]), int(header[1])) if len(header) == 2 else (1, int(header[0]))
    left, right, same, fold = [], [], [], []
    for i, row in enumerate(rows):
        if len(row) == 3:
            a, b, s = lfw_path(lfw_root, row[0], int(row[1])), lfw_path(lfw_root, row[0], int(row[2])), True
        elif len(row) == 4:
            a, b, s = lfw_path(lfw_root, row[0], int(row[1])), lfw_path(lfw_root, row[2], int(row[3])), False
        else:
            raise ValueError(f"{pairs_file}: bad line {i + 2}: {' '.join(row)}")
        left.append(a)
        right.append(b)
        same.append(s)
        fold.append(min(i // (2 * per), folds - 1))
    return Pairs(left, right, np.array(same), np.array(fold))


# ---------------------------------------------------------- embedding images


@dataclass
class EmbeddedSet:
    paths: list[Path]
    vectors: np.ndarray  # (N, 128) unit
    failed: list[Path]  # no face found; a centred fallback crop was embedded
    several: int  # images with more than one face (the one nearest the centre was used)

    def index(self) -> dict[Path, int]:
        return {p: i for i, p in enumerate(self.paths)}


def _nearest_centre(boxes: np.ndarray, shape: tuple[int, ...]) -> int:
    cx, cy = shape[1] / 2.0, shape[0] / 2.0
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    return int(np.argmin(((centres - [cx, cy]) ** 2).sum(1)))


@dataclass
class DetectedSet:
    """Landmarks of the face nearest the centre of each image. Images with no
    face get the set's mean landmark layout, centred (``found`` is False)."""

    paths: list[Path]
    landmarks: np.ndarray  # (N, 5, 2)
    found: np.ndarray  # (N,) bool
    several: int

    def subset(self, paths: list[Path]) -> DetectedSet:
        ix = {p: i for i, p in enumerate(self.paths)}
        rows = [ix[p] for p in paths]
        return DetectedSet(list(paths), self.landmarks[rows], self.found[rows], self.several)


def detect_paths(pipeline, paths: list[Path], batch_size: int = 32, progress: bool = True) -> DetectedSet:
    from tqdm import tqdm

    landmarks = np.zeros((len(paths), 5, 2), np.float32)
    found = np.zeros(len(paths), bool)
    centres = np.zeros((len(paths), 2), np.float32)
    several = 0
    bar = tqdm(total=len(paths), desc="detecting", unit="img", disable=not progress)
    for start in range(0, len(paths), batch_size):
        images = [load_image(p) for p in paths[start : start + batch_size]]
        for j, (img, det) in enumerate(zip(images, pipeline.detect(images), strict=True)):
            i = start + j
            centres[i] = img.shape[1] / 2, img.shape[0] / 2
            if len(det):
                several += len(det) > 1
                landmarks[i] = det.landmarks[_nearest_centre(det.boxes, img.shape) if len(det) > 1 else 0]
                found[i] = True
        bar.update(len(images))
    bar.close()
    if (~found).any():
        mean_offsets = (landmarks[found] - centres[found][:, None]).mean(0) if found.any() else 0
        landmarks[~found] = mean_offsets + centres[~found][:, None]
    return DetectedSet(list(paths), landmarks, found, several)


def embed_detected(pipeline, det: DetectedSet, flip: bool = False, batch_size: int = 64,
                   progress: bool = True, desc: str = "embedding") -> EmbeddedSet:
    from tqdm import tqdm

    vectors = np.zeros((len(det.paths), 128), np.float32)
    bar = tqdm(total=len(det.paths), desc=desc, unit="img", disable=not progress)
    for start in range(0, len(det.paths), batch_size):
        chunk = det.paths[start : start + batch_size]
        crops = [pipeline.align(load_image(p), det.landmarks[start + j]) for j, p in enumerate(chunk)]
        vectors[start : start + len(chunk)] = _embed(pipeline, crops, flip)
        bar.update(len(chunk))
    bar.close()
    return EmbeddedSet(det.paths, vectors, [p for p, f in zip(det.paths, det.found, strict=True) if not f],
                       det.several)


def embed_paths(
    pipeline,
    paths: Iterable[Path],
    flip: bool = False,
    batch_size: int = 32,
    progress: bool = True,
    desc: str = "embedding",
) -> EmbeddedSet:
    """Embed the face nearest the centre of every image. When no face is
    found the image is counted as a detection failure and a fallback crop
    (the typical landmark layout of the set, centred) is embedded, so a pair
    is never silently dropped."""
    det = detect_paths(pipeline, list(paths), batch_size=batch_size, progress=progress)
    return embed_detected(pipeline, det, flip=flip, progress=progress, desc=desc)


def _embed(pipeline, crops: list[np.ndarray], flip: bool) -> np.ndarray:
    v = pipeline.embed_crops(crops)
    if flip:
        v = v + pipeline.embed_crops([c[:, ::-1] for c in crops])
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
    return v


def _list_key(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cached_detections(pipeline, paths: list[Path], cache_dir: Path | None, progress: bool = True) -> DetectedSet:
    """:func:`detect_paths`, kept on disk: every embedder and flip setting (and
    any later run over a subset of the same images) reuses one detection pass."""
    if cache_dir is None:
        return detect_paths(pipeline, paths, progress=progress)
    wanted = {str(p) for p in paths}
    for file in sorted(Path(cache_dir).glob("lfw-detections-*.npz")):
        z = np.load(file, allow_pickle=False)
        if "paths" in z and wanted <= set(z["paths"].tolist()):
            cached = DetectedSet([Path(p) for p in z["paths"]], z["landmarks"], z["found"], int(z["several"]))
            return cached.subset(list(paths))
    det = detect_paths(pipeline, paths, progress=progress)
    file = Path(cache_dir) / f"lfw-detections-{_list_key('retinaface', *map(str, paths))}.npz"
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, paths=np.array([str(p) for p in paths]), landmarks=det.landmarks, found=det.found,
             several=det.several)
    return det


EMBEDDING_MODES = ("plain", "mirror", "flip")


def embed_mirrored(pipeline, det: DetectedSet, batch_size: int = 64, progress: bool = True) -> EmbeddedSet:
    """Embeddings of the mirrored aligned crops (unit norm). Flip TTA is
    ``scoring.flip_average(plain, mirrored)``."""
    from tqdm import tqdm

    vectors = np.zeros((len(det.paths), 128), np.float32)
    bar = tqdm(total=len(det.paths), desc="embedding mirrored", unit="img", disable=not progress)
    for start in range(0, len(det.paths), batch_size):
        chunk = det.paths[start : start + batch_size]
        crops = [pipeline.align(load_image(p), det.landmarks[start + j])[:, ::-1] for j, p in enumerate(chunk)]
        vectors[start : start + len(chunk)] = pipeline.embed_crops(crops)
        bar.update(len(chunk))
    bar.close()
    return EmbeddedSet(det.paths, vectors, [p for p, f in zip(det.paths, det.found, strict=True) if not f],
                       det.several)


def _embedding_meta(pipeline, mode: str) -> str:
    return "\n".join([pipeline.embedder_name, pipeline.embedder_version, str(pipeline.template.tolist()), mode])


def _superset_embeddings(pipeline, det: DetectedSet, mode: str, cache_dir: Path) -> EmbeddedSet | None:
    """A cache file of the same model, template and mode whose images include
    all of ``det``'s (files written before paths were stored are skipped)."""
    wanted = {str(p) for p in det.paths}
    meta = _embedding_meta(pipeline, mode)
    for file in sorted(Path(cache_dir).glob(f"lfw-{pipeline.embedder_name}-{mode}-*.npz")):
        z = np.load(file, allow_pickle=False)
        if "paths" not in z or "meta" not in z or str(z["meta"]) != meta:
            continue
        stored = z["paths"].tolist()
        if wanted <= set(stored):
            ix = {p: i for i, p in enumerate(stored)}
            vectors = z["vectors"][[ix[str(p)] for p in det.paths]]
            return EmbeddedSet(det.paths, vectors, [p for p, f in zip(det.paths, det.found, strict=True) if not f],
                               det.several)
    return None


def cached_embeddings(pipeline, det: DetectedSet, flip: bool | str, cache_dir: Path | None,
                      progress: bool = True) -> EmbeddedSet:
    """:func:`embed_detected` with an optional on-disk cache keyed by the
    model, the mode and the exact list of images; any cached file of the same
    model and mode holding a superset of the images is reused too.

    ``flip`` is False / ``"plain"``, True / ``"flip"`` (flip TTA) or
    ``"mirror"`` (the mirrored crops alone). With a cache, flip TTA is built
    from the cached plain and mirrored embeddings, so it costs one extra
    embedding pass rather than two."""
    mode = ("flip" if flip else "plain") if isinstance(flip, bool) else flip
    if mode not in EMBEDDING_MODES:
        raise ValueError(f"embedding mode must be one of {EMBEDDING_MODES}, not {flip!r}")
    if cache_dir is None:
        if mode == "mirror":
            return embed_mirrored(pipeline, det, progress=progress)
        return embed_detected(pipeline, det, flip=mode == "flip", progress=progress)
    key = _list_key(pipeline.embedder_name, pipeline.embedder_version, str(pipeline.template.tolist()),
                    {"plain": "False", "flip": "True"}.get(mode, mode), *map(str, det.paths))
    file = Path(cache_dir) / f"lfw-{pipeline.embedder_name}-{mode}-{key}.npz"
    if file.is_file():
        return EmbeddedSet(det.paths, np.load(file, allow_pickle=False)["vectors"],
                           [p for p, f in zip(det.paths, det.found, strict=True) if not f], det.several)
    found = _superset_embeddings(pipeline, det, mode, Path(cache_dir))
    if found is not None:
        return found
    if mode == "flip":
        from .scoring import flip_average

        plain = cached_embeddings(pipeline, det, "plain", cache_dir, progress)
        mirror = cached_embeddings(pipeline, det, "mirror", cache_dir, progress)
        result = EmbeddedSet(det.paths, flip_average(plain.vectors, mirror.vectors), plain.failed, plain.several)
    elif mode == "mirror":
        result = embed_mirrored(pipeline, det, progress=progress)
    else:
        result = embed_detected(pipeline, det, flip=False, progress=progress)
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, vectors=result.vectors, paths=np.array([str(p) for p in det.paths]),
             meta=np.array(_embedding_meta(pipeline, mode)))
    return result


# --------------------------------------------------------------- verification


def accuracy_at(dist: np.ndarray, same: np.ndarray, threshold: float) -> float:
    return float(np.mean((dist <= threshold) == same))


def best_threshold(dist: np.ndarray, same: np.ndarray) -> float:
    """The threshold maximising accuracy (midpoints between sorted distances)."""
    d = np.sort(np.unique(dist))
    candidates = np.concatenate([[d[0] - 1e-6], (d[:-1] + d[1:]) / 2, [d[-1] + 1e-6]])
    # Vectorised accuracy for every candidate threshold.
    order = np.argsort(dist)
    ds, ss = dist[order], same[order]
    pos_le = np.searchsorted(ds, candidates, side="right")
    cum_same = np.concatenate([[0], np.cumsum(ss)])
    tp = cum_same[pos_le]
    tn = (len(ss) - ss.sum()) - (pos_le - tp)
    acc = (tp + tn) / len(ss)
    return float(candidates[int(np.argmax(acc))])


def kfold_accuracy(dist: np.ndarray, same: np.ndarray, fold: np.ndarray, k: int = 10) -> dict:
    """Threshold chosen on k-1 folds, accuracy on the held-out one. A single
    fold file is split into k interleaved folds."""
    if len(np.unique(fold)) < 2:
        fold = np.arange(len(dist)) % k
    accs, thresholds = [], []
    for f in np.unique(fold):
        train, test = fold != f, fold == f
        t = best_threshold(dist[train], same[train])
        thresholds.append(t)
        accs.append(accuracy_at(dist[test], same[test], t))
    return {
        "accuracy_mean": float(np.mean(accs)),
        "accuracy_std": float(np.std(accs)),
        "fold_accuracies": [float(a) for a in accs],
        "threshold_mean": float(np.mean(thresholds)),
        "threshold_all": best_threshold(dist, same),
    }


def roc_curve(dist: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """False/true positive rates as the threshold sweeps up, and the AUC."""
    order = np.argsort(dist, kind="stable")
    s = same[order].astype(np.float64)
    tpr = np.concatenate([[0], np.cumsum(s) / max(s.sum(), 1)])
    fpr = np.concatenate([[0], np.cumsum(1 - s) / max((1 - s).sum(), 1)])
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def pair_distances(emb: EmbeddedSet, pairs: Pairs) -> np.ndarray:
    idx = emb.index()
    a = emb.vectors[[idx[p] for p in pairs.left]]
    b = emb.vectors[[idx[p] for p in pairs.right]]
    return np.linalg.norm(a - b, axis=1)


def verification_report(emb: EmbeddedSet, pairs: Pairs) -> dict:
    dist = pair_distances(emb, pairs)
    fpr, tpr, auc = roc_curve(dist, pairs.same)
    images = set(pairs.images)
    failed = [p for p in emb.failed if p in images]
    return {
        "pairs": len(pairs),
        "images": len(images),
        "detection_failures": len(failed),
        "detection_failure_rate": len(failed) / max(len(images), 1),
        "failed_images": [str(p) for p in failed],
        "several_faces_images": emb.several,
        "auc": auc,
        **kfold_accuracy(dist, pairs.same, pairs.fold),
        "_dist": dist,
        "_roc": (fpr, tpr),
    }


# ------------------------------------------------------------- identification


def identification_split(lfw_root: Path) -> tuple[list[Path], list[Path], list[Path], list[Path]]:
    """Gallery = the first photo of every person with >= 2 photos; genuine
    probes = their second photo; strangers = people with exactly one photo,
    split into two halves (threshold set on A, checked on B) by name hash."""
    gallery, genuine, strangers_a, strangers_b = [], [], [], []
    for person in sorted(p for p in (Path(lfw_root) / "images").iterdir() if p.is_dir()):
        photos = sorted(person.glob("*.jpg"))
        if len(photos) >= 2:
            gallery.append(photos[0])
            genuine.append(photos[1])
        elif len(photos) == 1:
            half = hashlib.sha256(person.name.encode()).digest()[0] % 2
            (strangers_a if half == 0 else strangers_b).append(photos[0])
    return gallery, genuine, strangers_a, strangers_b


def identification_images(lfw_root: Path) -> list[Path]:
    return sorted(p for part in identification_split(lfw_root) for p in part)


def _nearest(gallery: np.ndarray, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Unit vectors: ||a-b||^2 = 2 - 2 a.b ; chunked to bound memory.
    idx, dist = [], []
    for s in range(0, len(probes), 1024):
        sim = probes[s : s + 1024] @ gallery.T
        j = sim.argmax(1)
        idx.append(j)
        dist.append(np.sqrt(np.clip(2 - 2 * sim[np.arange(len(j)), j], 0, None)))
    return np.concatenate(idx), np.concatenate(dist)


def identification_report(emb: EmbeddedSet, lfw_root: Path, far: float = 0.01) -> dict:
    gallery, genuine, strangers_a, strangers_b = identification_split(lfw_root)
    ix = emb.index()
    g = emb.vectors[[ix[p] for p in gallery]]
    _, sa = _nearest(g, emb.vectors[[ix[p] for p in strangers_a]])
    _, sb = _nearest(g, emb.vectors[[ix[p] for p in strangers_b]])
    gi, gd = _nearest(g, emb.vectors[[ix[p] for p in genuine]])
    correct = gi == np.arange(len(genuine))
    threshold = float(np.quantile(sa, far))
    return {
        "gallery_people": len(gallery),
        "genuine_probes": len(genuine),
        "strangers_threshold_set": len(sa),
        "strangers_check_set": len(sb),
        "target_far": far,
        "threshold": threshold,
        "far_check": float(np.mean(sb <= threshold)),
        "genuine_accept_rate": float(np.mean(correct & (gd <= threshold))),
        "rank1_accuracy": float(np.mean(correct)),
    }


def stranger_accept_rate(emb: EmbeddedSet, lfw_root: Path, threshold: float) -> float:
    """Share of strangers (both halves) whose nearest gallery person is within ``threshold``."""
    gallery, _, sa, sb = identification_split(lfw_root)
    ix = emb.index()
    _, d = _nearest(emb.vectors[[ix[p] for p in gallery]], emb.vectors[[ix[p] for p in sa + sb]])
    return float(np.mean(d <= threshold))


# ------------------------------------------- identification options (issue 11)
#
# The same gallery people, genuine probes and strangers as identification_split,
# with three knobs: up to ``enrol`` enrolment photos per person (photos 1, 3, 4,
# ...: photo 2 stays the genuine probe), the person template built from them
# (scoring.template) and the acceptance rule (plain threshold, runner-up ratio,
# margin). The threshold set is the strangers of half A plus, for the
# two-parameter rules, the genuine probes of the gallery people of half A (same
# name hash as the strangers); every figure is reported on half B (strangers
# and genuine probes of the other people), and, for reference, on all 1,680
# genuine probes.


def name_half(name: str) -> int:
    """0 (threshold set) or 1 (check set): the hash identification_split uses for strangers."""
    return hashlib.sha256(name.encode()).digest()[0] % 2


def enrolment_split(lfw_root: Path, enrol: int = 1, min_photos: int = 2) -> tuple[list[Path], list[str]]:
    """Gallery photos and their person for up to ``enrol`` photos per person:
    the first photo (the protocol's gallery photo), then the third, fourth, ...
    (the second is the genuine probe). ``enrol=1`` is identification_split's gallery.

    ``min_photos`` keeps only the people with at least that many LFW photos
    (2: everybody, the protocol; ``enrol + 1``: a gallery where *every* person
    has ``enrol`` enrolment photos)."""
    if enrol < 1 or min_photos < 2:
        raise ValueError("enrol must be >= 1 and min_photos >= 2")
    paths, people = [], []
    for person in sorted(p for p in (Path(lfw_root) / "images").iterdir() if p.is_dir()):
        photos = sorted(person.glob("*.jpg"))
        if len(photos) >= min_photos:
            for photo in [photos[0], *photos[2 : enrol + 1]]:
                paths.append(photo)
                people.append(person.name)
    return paths, people


def options_images(lfw_root: Path, enrol: int = 1) -> list[Path]:
    """Every image the options protocol embeds for ``enrol`` photos per person."""
    return sorted(set(identification_images(lfw_root)) | set(enrolment_split(lfw_root, enrol)[0]))


@dataclass
class IdentificationScores:
    """Nearest person and runner-up of every probe against one gallery."""

    strangers_a: object  # scoring.Ranked, threshold set
    strangers_b: object  # scoring.Ranked, check set
    genuine: object  # scoring.Ranked, all genuine probes
    genuine_correct: np.ndarray  # (G,) nearest person is the right one
    genuine_half: np.ndarray  # (G,) 0 threshold set, 1 check set
    gallery_rows: int


def identification_scores(gallery_emb: EmbeddedSet, probe_emb: EmbeddedSet, lfw_root: Path, enrol: int = 1,
                          mode: str = "photos", min_photos: int = 2) -> IdentificationScores:
    """Score the protocol's probes against a gallery of up to ``enrol`` photos
    per person, template ``mode``, people with at least ``min_photos`` photos
    (genuine probes: theirs). Gallery photos are looked up in ``gallery_emb``
    and probes in ``probe_emb`` (e.g. flip TTA for enrolment only)."""
    from .scoring import build_gallery, nearest_two

    _, genuine, strangers_a, strangers_b = identification_split(lfw_root)
    paths, people = enrolment_split(lfw_root, enrol, min_photos)
    enrolled = set(people)
    genuine = [p for p in genuine if p.parent.name in enrolled]
    gix, pix = gallery_emb.index(), probe_emb.index()
    rows, row_person = build_gallery(gallery_emb.vectors[[gix[p] for p in paths]], people, mode)

    def ranked(probes):
        return nearest_two(rows, row_person, probe_emb.vectors[[pix[p] for p in probes]])

    g = ranked(genuine)
    truth = np.array([p.parent.name for p in genuine])
    return IdentificationScores(
        strangers_a=ranked(strangers_a),
        strangers_b=ranked(strangers_b),
        genuine=g,
        genuine_correct=g.person1 == truth,
        genuine_half=np.array([name_half(n) for n in truth]),
        gallery_rows=len(rows),
    )


def option_report(scores: IdentificationScores, far: float = 0.01, kind: str = "plain",
                  grid=None, cap_far: float | None = 0.01) -> dict:
    """Choose the rule (``plain``, ``ratio`` or ``margin``) on the threshold set
    at the target ``far``, report it on the check set.

    For targets stricter than ``cap_far`` the ratio / margin rules keep the
    plain ``cap_far`` threshold as a ceiling on ``d1`` (chosen on the same
    threshold-set strangers), so that a gallery of one person, with no
    runner-up, still holds strangers to ``cap_far``."""
    from .scoring import accept_rate, choose_rule, threshold_at_far

    sa, sb, g = scores.strangers_a, scores.strangers_b, scores.genuine
    tune, check = scores.genuine_half == 0, scores.genuine_half == 1
    cap = threshold_at_far(sa.d1, far=cap_far) if cap_far is not None and far < cap_far else None
    rule = choose_rule(sa.d1, sa.d2, scores.genuine_correct[tune], g.d1[tune], g.d2[tune], far=far, kind=kind,
                       grid=grid, cap=cap)
    return {
        "rule": kind,
        "target_far": far,
        "threshold": rule.threshold,
        "ratio": rule.ratio,
        "margin": rule.margin,
        "describe": rule.describe(),
        "threshold_cap": cap,
        "far_threshold_set": accept_rate(rule, sa.d1, sa.d2),
        "far_check": accept_rate(rule, sb.d1, sb.d2),
        "genuine_accept_check": accept_rate(rule, g.d1[check], g.d2[check], scores.genuine_correct[check]),
        "genuine_accept_threshold_set": accept_rate(rule, g.d1[tune], g.d2[tune], scores.genuine_correct[tune]),
        "genuine_accept_all": accept_rate(rule, g.d1, g.d2, scores.genuine_correct),
        # Enrolled people let in as somebody else (nearest person wrong, yet accepted).
        "genuine_wrong_accept_check": accept_rate(rule, g.d1[check], g.d2[check], ~scores.genuine_correct[check]),
        "genuine_wrong_accept_all": accept_rate(rule, g.d1, g.d2, ~scores.genuine_correct),
        "rank1_check": float(np.mean(scores.genuine_correct[check])),
        "rank1_all": float(np.mean(scores.genuine_correct)),
        "gallery_people": len(scores.genuine_correct),  # one genuine probe per enrolled person
        "genuine_probes_check": int(check.sum()),
        "strangers_check": len(sb.d1),
        "gallery_rows": scores.gallery_rows,
    }


# --------------------------------------------------------------------- output


def plot_verification(report: dict, same: np.ndarray, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fpr, tpr = report["_roc"]
    dist = report["_dist"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    ax1.plot(fpr, tpr, lw=2)
    ax1.set_xscale("log")
    ax1.set_xlim(1e-3, 1)
    visible = tpr[fpr >= 1e-3]
    ax1.set_ylim(max(0.0, float(visible.min()) - 0.02) if visible.size else 0.0, 1.002)
    ax1.set_xlabel("false accept rate (different-person pairs accepted)")
    ax1.set_ylabel("true accept rate")
    ax1.set_title(f"ROC, AUC {report['auc']:.4f}")
    ax1.grid(True, which="both", alpha=0.3)
    bins = np.linspace(0, 2, 81)
    ax2.hist(dist[same], bins=bins, alpha=0.6, label="same person")
    ax2.hist(dist[~same], bins=bins, alpha=0.6, label="different people")
    ax2.axvline(report["threshold_all"], color="k", ls="--", label=f"threshold {report['threshold_all']:.3f}")
    ax2.set_xlabel("Euclidean distance of unit embeddings")
    ax2.set_ylabel("pairs")
    ax2.legend()
    ax2.set_title(f"accuracy {100 * report['accuracy_mean']:.2f}% ± {100 * report['accuracy_std']:.2f}")
    fig.suptitle(title)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def public(report: dict) -> dict:
    """Drop the arrays kept for plotting."""
    return {k: v for k, v in report.items() if not k.startswith("_")}


def write_json(obj: dict, out: Path) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(obj, indent=2))

