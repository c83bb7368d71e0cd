"""Detection of small and distant faces: recall and precision per face size and
canvas size, and time per image, for each detection policy.

    python bench/detection_bench.py [--threads 1] [--per-size 40] [--seed 0] [--repeat 1]
        [--canvas 640x480 --canvas 1280x720 --canvas 1920x1080] [--close-ups 0.25]
        [--policy standard --policy small_faces --policy '{"name": "x", "min_face_px": 40}']
        [--examples 2] [--json out/detection_bench.json]

Synthetic scenes, deterministic for a seed: LFW faces (one photo per person,
a crop around the face) pasted at random, non-overlapping positions and sizes
(face width 24-200 px, log-uniform) onto canvases of each size, several per
canvas, over varied backgrounds (flat, gradient, smooth texture, boxes and
lines, and real clutter: a mosaic of the bottoms of LFW photos, suits, hands,
flags, with anything face-like painted out); some faces greyscale, some
blurred, brightness jittered; some whole canvases greyscale (night/IR
cameras); every canvas JPEG-encoded as a camera would send it. A quarter of
the canvases (--close-ups) also hold one close-up, a face 0.3-0.6 of the
frame height wide: the door case, where a high-resolution pass sees parts of
the face as faces.

The ground-truth box of each face is RetinaFace's own box on the original
250x250 photo at full resolution, mapped through the paste transform, so a
match measures "found", not box conventions; photos where any other (even
weak) detection touches the crop are skipped. A detection matches the
unmatched ground truth it overlaps most when IoU >= --iou (0.4), detections
taken by score. Recall is per face-size bucket (ground-truth box width in
canvas pixels) and canvas size; precision per canvas size (a detection that
matches nothing is a false positive). Time: one detect call per canvas
(batch of one; with --repeat R the fastest of R), median and p90 over the
canvases of a size: wall clock with --threads torch threads, and the process
CPU time (all threads), which moves less with the load of a shared machine.
The policies take turns on every canvas, so load from other processes hits
them alike; the load average goes into the JSON.

The default run (3 sizes x 40 canvases, about 950 faces, standard and
small_faces) takes about two minutes on 2 cores, one torch thread. --examples N writes N annotated canvases per size to
out/detection_bench/ (green: truth, red: detections with scores). Needs the
weights cache (python -m recognition.engine fetch-weights) and LFW beside
the checkout (../shared/datasets/lfw, or --lfw-dir).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recognition.engine import registry  # noqa: E402
from recognition.engine.detection_policy import DetectionPolicy  # noqa: E402
from recognition.engine.detector import RetinaFaceDetector, box_iou  # noqa: E402

LFW_DIR = ROOT.parent / "shared" / "datasets" / "lfw"
BUCKETS: tuple[tuple[float, float], ...] = ((24, 32), (32, 48), (48, 64), (64, 96), (96, 128), (128, 200), (200, 1e9))
CANVASES = ("640x480", "1280x720", "1920x1080")
FACES_PER_VGA = (3.0, 6.0)  # faces per canvas: uniform in this range x sqrt(canvas area / 640x480)
CROP_MARGIN = (0.3, 0.25)  # paste a crop this much wider (each side, x of the face width) / taller (x height)


def bucket_name(lo: float, hi: float) -> str:
    return f"{int(lo)}-{int(hi) - 1}" if hi < 1e6 else f">={int(lo)}"


def bucket_of(width: float) -> str | None:
    for lo, hi in BUCKETS:
        if lo <= width < hi:
            return bucket_name(lo, hi)
    return None


# ---------------------------------------------------------------- LFW faces with a known box


@dataclass
class FaceCrop:
    image: np.ndarray  # RGB crop around the face
    box: np.ndarray  # (4,) the face box inside the crop, RetinaFace's on the full-resolution photo
    source: str


def face_pool(detector: RetinaFaceDetector, lfw_dir: Path, seed: int):
    """Yields :class:`FaceCrop` from LFW, one photo per person in a seeded order.

    The target is RetinaFace's most central face on the 250x250 photo (score >= 0.9, at least 60 px
    wide); the photo is skipped when any other detection, even a weak one (score >= 0.3), touches the
    crop, so the canvas holds no face without ground truth.
    """
    people = sorted(p for p in (lfw_dir / "images").iterdir() if p.is_dir())
    order = np.random.default_rng([seed, 1]).permutation(len(people))
    weak = RetinaFaceDetector(detector.model, score_threshold=0.3, max_side=detector.max_side)
    for i in order:
        photos = sorted(people[i].glob("*.jpg"))
        if not photos:
            continue
        bgr = cv2.imread(str(photos[0]))
        if bgr is None:
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        det = weak.detect([rgb])[0]  # 250x250 < max_side: full resolution
        if not len(det):
            continue
        centres = (det.boxes[:, :2] + det.boxes[:, 2:]) / 2
        t = int(np.argmin(np.linalg.norm(centres - [w / 2, h / 2], axis=1)))
        box = det.boxes[t].astype(np.float64)
        bw, bh = box[2] - box[0], box[3] - box[1]
        if det.scores[t] < 0.9 or bw < 60:
            continue
        x0 = int(max(0, math.floor(box[0] - CROP_MARGIN[0] * bw)))
        y0 = int(max(0, math.floor(box[1] - CROP_MARGIN[1] * bh)))
        x1 = int(min(w, math.ceil(box[2] + CROP_MARGIN[0] * bw)))
        y1 = int(min(h, math.ceil(box[3] + CROP_MARGIN[1] * bh)))
        others = np.delete(det.boxes, t, axis=0)
        touching = (others[:, 0] < x1) & (others[:, 2] > x0) & (others[:, 1] < y1) & (others[:, 3] > y0)
        if touching.any():
            continue
        yield FaceCrop(rgb[y0:y1, x0:x1].copy(), box - [x0, y0, x0, y0], photos[0].name)


# ---------------------------------------------------------------- scenes


class Clutter:
    """Photo backgrounds for a harder precision test: a mosaic of enlarged bottom strips of LFW
    photos (shoulders, suits, ties, hands, flags, lecterns, captions; the faces are above), with
    anything even faintly face-like painted out, so every detection on it is a false positive."""

    STRIP = (190, 250)  # rows of the 250x250 photo used

    def __init__(self, detector: RetinaFaceDetector, lfw_dir: Path):
        self.photos = sorted((lfw_dir / "images").glob("*/*.jpg"))
        # Look at full resolution and as the standard pass sees it.
        self.finders = [
            RetinaFaceDetector(detector.model, score_threshold=0.1, max_side=100_000),
            RetinaFaceDetector(detector.model, score_threshold=0.1, max_side=detector.max_side),
        ]

    def mosaic(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        scale = rng.uniform(1.5, 3.0)
        th, tw = round((self.STRIP[1] - self.STRIP[0]) * scale), round(250 * scale)
        img = np.empty((h, w, 3), np.uint8)
        for y in range(0, h, th):
            offset = int(rng.integers(0, tw))  # staggered, like bricks
            for x in range(-offset, w, tw):
                bgr = cv2.imread(str(self.photos[int(rng.integers(len(self.photos)))]))
                strip = cv2.cvtColor(bgr[self.STRIP[0] : self.STRIP[1]], cv2.COLOR_BGR2RGB)
                strip = cv2.resize(strip, (tw, th), interpolation=cv2.INTER_CUBIC)
                if rng.random() < 0.5:
                    strip = strip[:, ::-1]
                x0 = max(0, x)
                img[y : y + th, x0 : x + tw] = strip[: h - y, x0 - x : w - x]
        for _ in range(2):  # painting one out can leave something the next look finds
            boxes = np.concatenate([f.detect([img])[0].boxes for f in self.finders])
            if not len(boxes):
                break
            for x1, y1, x2, y2 in boxes:
                mx, my = 0.15 * (x2 - x1), 0.15 * (y2 - y1)
                a, b = int(max(0, x1 - mx)), int(max(0, y1 - my))
                c, d = int(min(w, x2 + mx + 1)), int(min(h, y2 + my + 1))
                if c - a < 2 or d - b < 2:
                    continue
                ring = np.concatenate([img[b:d, a], img[b:d, c - 1], img[b, a:c], img[d - 1, a:c]])
                img[b:d, a:c] = np.clip(ring.mean(0) + rng.normal(0, 6, (d - b, c - a, 3)), 0, 255).astype(np.uint8)
        return img.astype(np.float32)


def background(rng: np.random.Generator, h: int, w: int, clutter: Clutter | None) -> tuple[np.ndarray, str]:
    kinds = ["flat", "gradient", "texture", "structures"] + (["photo"] if clutter else [])
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "photo":
        img = clutter.mosaic(rng, h, w)
    elif kind == "flat":
        img = np.empty((h, w, 3), np.float32)
        img[:] = rng.uniform(40, 220, 3)
    elif kind == "gradient":
        a, b = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
        t = np.linspace(0, 1, w if rng.random() < 0.5 else h, dtype=np.float32)
        ramp = a + (b - a) * t[:, None]
        img = np.broadcast_to(ramp[None] if len(t) == w else ramp[:, None], (h, w, 3)).astype(np.float32)
    elif kind == "texture":
        cells = int(rng.integers(4, 40))
        small = rng.uniform(0, 255, (cells, max(2, cells * w // h), 3)).astype(np.float32)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        img = 0.6 * img + 0.4 * rng.uniform(60, 200, 3)
    else:  # doors, windows, signs, cables
        img = np.empty((h, w, 3), np.float32)
        img[:] = rng.uniform(60, 200, 3)
        for _ in range(int(rng.integers(5, 25))):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            rw, rh = int(rng.integers(w // 40, w // 3)), int(rng.integers(h // 40, h // 2))
            cv2.rectangle(img, (x, y), (x + rw, y + rh), rng.uniform(0, 255, 3).tolist(), -1)
        for _ in range(int(rng.integers(3, 15))):
            p = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            q = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(img, p, q, rng.uniform(0, 255, 3).tolist(), int(rng.integers(1, 6)))
    img = img + rng.normal(0, rng.uniform(2, 8), (h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255), kind


def paste(canvas: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend ``patch`` at (x, y) with feathered edges (no hard rectangle around the face)."""
    ph, pw = patch.shape[:2]
    feather = max(1.0, 0.06 * min(ph, pw))
    ramp_x = np.clip((np.minimum(np.arange(pw), pw - 1 - np.arange(pw)) + 0.5) / feather, 0, 1)
    ramp_y = np.clip((np.minimum(np.arange(ph), ph - 1 - np.arange(ph)) + 0.5) / feather, 0, 1)
    alpha = (ramp_y[:, None] * ramp_x[None, :])[..., None].astype(np.float32)
    region = canvas[y : y + ph, x : x + pw]
    region[:] = alpha * patch + (1 - alpha) * region


@dataclass
class Scene:
    image: np.ndarray  # RGB uint8 (decoded JPEG)
    boxes: np.ndarray  # (N, 4) ground truth in canvas pixels
    canvas: str
    background: str
    info: list[dict]


def make_scene(
    rng: np.random.Generator,
    pool,
    w: int,
    h: int,
    size_range: tuple[float, float],
    close_up: float,
    clutter: Clutter | None = None,
) -> Scene:
    img, kind = background(rng, h, w, clutter)
    n = round(rng.uniform(*FACES_PER_VGA) * math.sqrt(w * h / (640 * 480)))
    lo, hi = size_range
    widths = sorted(np.exp(rng.uniform(math.log(lo), math.log(hi), n)), reverse=True)  # big ones first: they fit
    if rng.random() < close_up:  # someone right at the camera: a face 0.3-0.6 of the frame height wide
        widths.insert(0, float(rng.uniform(0.3, 0.6) * h))
    placed: list[tuple[int, int, int, int]] = []
    boxes, info = [], []
    for fw in widths:
        face = next(pool)
        s = fw / (face.box[2] - face.box[0])
        image, box = face.image, face.box
        ch, cw = image.shape[:2]
        pw, ph = max(1, round(cw * s)), max(1, round(ch * s))
        if (pw >= w or ph >= h) and fw > hi:  # a close-up: keep the part of the crop the frame can hold
            fx, fy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            kw, kh = min(cw, int((w - 1) / s)), min(ch, int((h - 1) / s))
            x0 = int(np.clip(round(fx - kw / 2), 0, cw - kw))
            y0 = int(np.clip(round(fy - kh / 2), 0, ch - kh))
            image, box = image[y0 : y0 + kh, x0 : x0 + kw], box - [x0, y0, x0, y0]
            if box[0] < 0 or box[1] < 0 or box[2] > kw or box[3] > kh:
                continue  # the face itself would not fit
            ch, cw = image.shape[:2]
            pw, ph = max(1, round(cw * s)), max(1, round(ch * s))
        if pw >= w or ph >= h:
            continue
        for _ in range(60):
            x, y = int(rng.integers(0, w - pw + 1)), int(rng.integers(0, h - ph + 1))
            gap = 4
            if all(x + pw + gap <= a or a2 + gap <= x or y + ph + gap <= b or b2 + gap <= y for a, b, a2, b2 in placed):
                break
        else:
            continue  # no room left for this one
        placed.append((x, y, x + pw, y + ph))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
        patch = cv2.resize(image, (pw, ph), interpolation=interp).astype(np.float32)
        grey = rng.random() < 0.2
        if grey:
            patch = np.repeat(cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        patch = patch * rng.uniform(0.7, 1.2) + rng.uniform(-20, 20)
        sigma = float(rng.uniform(0.6, 1.4)) if rng.random() < 0.3 else 0.0
        if sigma:
            patch = cv2.GaussianBlur(patch, (0, 0), sigma)
        paste(img, np.clip(patch, 0, 255), x, y)
        fx, fy = pw / cw, ph / ch
        b = box
        boxes.append([x + b[0] * fx, y + b[1] * fy, x + b[2] * fx, y + b[3] * fy])
        info.append({"source": face.source, "width": round(float(b[2] - b[0]) * fx, 1), "grey": grey, "blur": sigma})
    img = np.clip(img, 0, 255).astype(np.uint8)
    night = rng.random() < 0.15
    if night:
        img = np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    quality = int(rng.integers(70, 93))
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    img = cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return Scene(img, np.array(boxes, np.float32).reshape(-1, 4), f"{w}x{h}", kind + (" night" if night else ""), info)


def make_scenes(
    detector, lfw_dir: Path, seed: int, canvases, per_size: int, size_range, close_up: float
) -> list[Scene]:
    pool = face_pool(detector, lfw_dir, seed)
    clutter = Clutter(detector, lfw_dir)
    scenes = []
    for c, name in enumerate(canvases):
        w, h = (int(v) for v in name.split("x"))
        for i in range(per_size):
            rng = np.random.default_rng([seed, 2, c, i])
            scenes.append(make_scene(rng, pool, w, h, size_range, close_up, clutter))
    return scenes


# ---------------------------------------------------------------- scoring


def match(gt: np.ndarray, boxes: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy matching, detections in the given (score) order: (gt_hit bool[G], det_hit bool[D], iou of hits)."""
    gt_hit = np.zeros(len(gt), bool)
    det_hit = np.zeros(len(boxes), bool)
    ious = []
    if len(gt) and len(boxes):
        iou = box_iou(torch.from_numpy(boxes), torch.from_numpy(gt)).numpy()
        for d in range(len(boxes)):
            row = np.where(gt_hit, -1.0, iou[d])
            g = int(row.argmax())
            if row[g] >= iou_threshold:
                gt_hit[g] = det_hit[d] = True
                ious.append(row[g])
    return gt_hit, det_hit, np.array(ious)


def run_policies(
    detector: RetinaFaceDetector, policies, scenes: list[Scene], repeat: int = 1
) -> dict[str, list[tuple]]:
    """(detections, wall ms, CPU ms) per scene and policy; with ``repeat`` > 1 the times are the
    fastest of that many runs. The policies take turns on each scene, so load from other processes
    on a shared machine hits them alike."""
    for policy in policies:  # warm up: the inference copy of the weights, the anchors
        detector.detect([scenes[0].image], policy=policy)
    runs: dict[str, list[tuple]] = {p.name: [] for p in policies}
    for sc in scenes:
        best: dict[str, list] = {}
        for _ in range(max(1, repeat)):
            for policy in policies:
                t0, c0 = time.perf_counter(), time.process_time()
                det = detector.detect([sc.image], policy=policy)[0]
                wall, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
                if policy.name not in best:
                    best[policy.name] = [det, wall, cpu]
                else:
                    best[policy.name][1] = min(best[policy.name][1], wall)
                    best[policy.name][2] = min(best[policy.name][2], cpu)
        for name, (det, wall, cpu) in best.items():
            runs[name].append((det, wall, cpu))
    return runs


def score(scenes: list[Scene], runs: list[tuple], iou: float) -> dict:
    per_canvas: dict[str, dict] = {}
    for sc, (det, wall, cpu) in zip(scenes, runs, strict=True):
        gt_hit, det_hit, ious = match(sc.boxes, det.boxes, iou)
        c = per_canvas.setdefault(sc.canvas, {"ms": [], "cpu_ms": [], "tp": 0, "fp": 0, "iou": [], "buckets": {}})
        c["ms"].append(wall)
        c["cpu_ms"].append(cpu)
        c["tp"] += int(det_hit.sum())
        c["fp"] += int((~det_hit).sum())
        kind = sc.background.split()[0]
        c.setdefault("fp_by_background", {}).setdefault(kind, 0)
        c["fp_by_background"][kind] += int((~det_hit).sum())
        c["iou"] += ious.tolist()
        for b, hit in zip(sc.boxes, gt_hit, strict=True):
            name = bucket_of(float(b[2] - b[0]))
            if name:
                cell = c["buckets"].setdefault(name, [0, 0])
                cell[0] += int(hit)
                cell[1] += 1
    out = {}
    for name, c in per_canvas.items():
        ms, cpu = sorted(c["ms"]), sorted(c["cpu_ms"])
        n_det = c["tp"] + c["fp"]
        ge32 = [v for (lo, hi), v in ((b, c["buckets"].get(bucket_name(*b))) for b in BUCKETS) if v and lo >= 32]
        found32, total32 = sum(v[0] for v in ge32), sum(v[1] for v in ge32)
        out[name] = {
            "recall": {k: {"found": v[0], "faces": v[1], "recall": v[0] / v[1]} for k, v in c["buckets"].items()},
            "recall_ge32": {"found": found32, "faces": total32, "recall": found32 / total32 if total32 else None},
            "precision": c["tp"] / n_det if n_det else None,
            "false_positives": c["fp"],
            "false_positives_by_background": c.get("fp_by_background", {}),
            "detections": n_det,
            "mean_iou": float(np.mean(c["iou"])) if c["iou"] else None,
            "median_ms": statistics.median(ms),
            "p90_ms": ms[int(0.9 * (len(ms) - 1))],
            "median_cpu_ms": statistics.median(cpu),
            "images": len(ms),
        }
    return out


def draw(scene: Scene, det, path: Path) -> None:
    img = cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR)
    for b in scene.boxes.astype(int):
        cv2.rectangle(img, (b[0], b[1]), (b[2], b[3]), (0, 200, 0), 2)
    for b, s in zip(det.boxes.astype(int), det.scores, strict=True):
        cv2.rectangle(img, (b[0], b[1]), (b[2], b[3]), (0, 0, 255), 1)
        cv2.putText(img, f"{s:.2f}", (b[0], max(10, b[1] - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 255), 1)
    cv2.imwrite(str(path), img)


# ---------------------------------------------------------------- report


def parse_policy(text: str) -> DetectionPolicy:
    return DetectionPolicy.parse(json.loads(text) if text.lstrip().startswith("{") else text)


def print_report(results: dict, canvases, buckets) -> None:
    names = list(results)
    for canvas in canvases:
        print(f"\n== {canvas}: recall per face width (px) ==")
        print(f"{'face width':12s}" + "".join(f"{n:>22s}" for n in names))
        for b in buckets:
            cells = []
            for n in names:
                r = results[n][canvas]["recall"].get(b)
                cells.append(f"{r['found']:4d}/{r['faces']:<4d} {100 * r['recall']:5.1f}%" if r else "-")
            print(f"{b:12s}" + "".join(f"{c:>22s}" for c in cells))
        rows = [
            (
                "all >= 32",
                lambda r: (
                    f"{r['recall_ge32']['found']:4d}/{r['recall_ge32']['faces']:<4d} "
                    f"{100 * (r['recall_ge32']['recall'] or 0):5.1f}%"
                ),
            ),
            ("precision", lambda r: f"{100 * (r['precision'] or 0):.1f}% ({r['false_positives']} FP)"),
            ("FP on photos", lambda r: str(r["false_positives_by_background"].get("photo", 0))),
            ("mean IoU", lambda r: f"{r['mean_iou'] or 0:.3f}"),
            ("ms/image", lambda r: f"{r['median_ms']:.1f} (p90 {r['p90_ms']:.0f})"),
            ("CPU ms/image", lambda r: f"{r['median_cpu_ms']:.1f}"),
        ]
        for label, fmt in rows:
            print(f"{label:12s}" + "".join(f"{fmt(results[n][canvas]):>22s}" for n in names))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-size", type=int, default=40, help="canvases per canvas size (default 40)")
    parser.add_argument("--canvas", action="append", help=f"WxH, repeatable (default {', '.join(CANVASES)})")
    parser.add_argument("--min-face", type=float, default=24.0, help="smallest pasted face width (px)")
    parser.add_argument("--max-face", type=float, default=200.0, help="largest pasted face width (px)")
    parser.add_argument(
        "--close-ups",
        type=float,
        default=0.25,
        help="share of canvases that also get one face 0.3-0.6 of the frame height wide (0.25)",
    )
    parser.add_argument(
        "--policy", action="append", help="preset name or JSON fields, repeatable (default: standard and small_faces)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="time each detection this many times, keep the fastest")
    parser.add_argument("--iou", type=float, default=0.4, help="IoU for a match (default 0.4)")
    parser.add_argument("--max-side", type=int, default=640, help="the detector's max_side (default 640)")
    parser.add_argument("--examples", type=int, default=0, help="annotated canvases per size to out/detection_bench/")
    parser.add_argument("--lfw-dir", type=Path, default=LFW_DIR)
    parser.add_argument("--json", type=Path, default=ROOT / "out" / "detection_bench.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    canvases = args.canvas or list(CANVASES)
    policies = [parse_policy(p) for p in (args.policy or ["standard", "small_faces"])]
    if len({p.name for p in policies}) != len(policies):
        raise SystemExit("policies need distinct names")
    if not (args.lfw_dir / "images").is_dir():
        raise SystemExit(f"LFW not found at {args.lfw_dir} (--lfw-dir)")

    detector = RetinaFaceDetector.from_state_dict(registry.load_state_dict(registry.DETECTOR), max_side=args.max_side)
    t0 = time.perf_counter()
    scenes = make_scenes(
        detector, args.lfw_dir, args.seed, canvases, args.per_size, (args.min_face, args.max_face), args.close_ups
    )
    n_faces = sum(len(s.boxes) for s in scenes)
    print(
        f"{len(scenes)} canvases, {n_faces} faces, built in {time.perf_counter() - t0:.1f} s "
        f"(seed {args.seed}, {args.threads} torch thread(s))"
    )

    t0 = time.perf_counter()
    load_before = list(os.getloadavg())
    runs = run_policies(detector, policies, scenes, args.repeat)
    print(f"detection, all policies: {time.perf_counter() - t0:.1f} s")
    results = {name: score(scenes, r, args.iou) for name, r in runs.items()}
    buckets = [bucket_name(lo, hi) for lo, hi in BUCKETS]
    print_report(results, canvases, buckets)

    if args.examples:
        folder = args.json.parent / "detection_bench"
        folder.mkdir(parents=True, exist_ok=True)
        for canvas in canvases:
            chosen = [i for i, s in enumerate(scenes) if s.canvas == canvas][: args.examples]
            for i in chosen:
                for name in results:
                    draw(scenes[i], runs[name][i][0], folder / f"{canvas}-{i:03d}-{name}.jpg")
        print(f"examples in {folder}")

    meta = {
        "seed": args.seed,
        "threads": args.threads,
        "repeat": args.repeat,
        "load_average": [load_before, list(os.getloadavg())],
        "per_size": args.per_size,
        "canvases": canvases,
        "face_width": [args.min_face, args.max_face],
        "close_ups": args.close_ups,
        "iou": args.iou,
        "max_side": args.max_side,
        "faces": n_faces,
        "images": len(scenes),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "policies": {p.name: p.as_dict() for p in policies},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
