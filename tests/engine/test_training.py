"""Training on tiny data made here: FaceNet separates synthetic identities, RetinaFace finds
synthetic faces; plus the pieces (sampler, augmentation, label reader, matching, multibox, resume)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from recognition.engine import registry
from recognition.engine.detector import RetinaFaceDetector, box_iou, prior_boxes
from recognition.engine.embedders import build_net
from recognition.engine.training import common, data, evaluators, facenet, multibox, retinaface, wider

from .conftest import write_identities

SHARED_RETINAFACE = Path(__file__).resolve().parents[3] / "shared" / "models" / "retinaface_mobilenet0.25.pth"



# ------------------------------------------------------------------------------ synthetic data


def identity_images(n_ids: int, per_id: int, size: int, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Each identity: its own stripe colours / frequency / orientation and a blob; images jitter."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = {}
    for i in range(n_ids):
        c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        ang, freq = rng.uniform(0, np.pi), rng.uniform(2, 6)
        bx, by = rng.uniform(0.25, 0.75, 2)
        imgs = []
        for _ in range(per_id):
            dx, dy = rng.uniform(-0.05, 0.05, 2)
            t = 0.5 + 0.5 * np.sin(2 * np.pi * freq * ((xx + dx) * np.cos(ang) + (yy + dy) * np.sin(ang)))
            img = t[..., None] * c1 + (1 - t[..., None]) * c2
            blob = np.exp(-((xx - bx - dx) ** 2 + (yy - by - dy) ** 2) / 0.01)[..., None]
            img = img * (1 - blob) + blob * (255 - c1)
            img = img * rng.uniform(0.85, 1.15) + rng.normal(0, 8, img.shape)
            imgs.append(np.clip(img, 0, 255).astype(np.uint8))
        out[f"person{i:02d}"] = imgs
    return out



REL_LANDMARKS = np.array([[0.3, 0.35], [0.7, 0.35], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]])


def box_images(n: int, size: int = 64, seed: int = 0) -> list[tuple[np.ndarray, list[tuple[int, int, int]]]]:
    """Dark noisy images with one or two bright squares ("faces", x y side) with dark landmark dots."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = rng.normal(40, 12, (size, size, 3))
        faces: list[tuple[int, int, int]] = []
        for _ in range(1 + i % 2):
            for _try in range(100):
                s = int(rng.integers(16, 29))
                x, y = (int(v) for v in rng.integers(2, size - s - 2, 2))
                if all(x + s < fx or fx + fs < x or y + s < fy or fy + fs < y for fx, fy, fs in faces):
                    break
            faces.append((x, y, s))
            img[y : y + s, x : x + s] = rng.uniform(170, 255, 3)
            for px, py in REL_LANDMARKS:
                cx, cy = int(x + px * s), int(y + py * s)
                img[cy - 1 : cy + 1, cx - 1 : cx + 1] = 20
        out.append((np.clip(img, 0, 255).astype(np.uint8), faces))
    return out


def write_wider(root: Path, items, without_landmarks: set[int] = frozenset()) -> tuple[Path, Path]:
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (img, faces) in enumerate(items):
        name = f"img{i:03d}.png"
        cv2.imwrite(str(root / "images" / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        lines.append(f"# {name}")
        for x, y, s in faces:
            if i in without_landmarks:
                pts = " ".join(["-1.0"] * 15)
            else:
                pts = " ".join(f"{x + px * s:.2f} {y + py * s:.2f} 0.0" for px, py in REL_LANDMARKS)
            lines.append(f"{x} {y} {s} {s} {pts} 0.9")
    (root / "label.txt").write_text("\n".join(lines) + "\n")
    return root / "label.txt", root / "images"


def read_log(out: Path) -> list[dict[str, str]]:
    with open(out / "log.csv") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------ FaceNet


FACENET_FAST = ["--input-size", "32", "--workers", "0", "--threads", "1", "--no-progress", "--plot-every", "100"]


def test_facenet_training_separates_synthetic_identities(tmp_path):
    ids = identity_images(5, 6, 32)
    root = write_identities(tmp_path / "faces", ids)
    out = tmp_path / "run"
    argv = ["--data", str(root), "--out", str(out), "--backbone", "mobilenet", "--loss", "triplet+ce",
            "--epochs", "5", "--p", "5", "--k", "4", "--batches-per-epoch", "6", "--lr", "3e-3",
            "--bn-recalibrate", "2", *FACENET_FAST]  # fmt: skip
    assert facenet.main_train_facenet(argv) == 0

    log = read_log(out)
    assert [int(r["epoch"]) for r in log] == [1, 2, 3, 4, 5]
    first, last = float(log[0]["train_loss"]), float(log[-1]["train_loss"])
    assert last < 0.5 * first, (first, last)
    assert float(log[-1]["train_accuracy"]) > float(log[0]["train_accuracy"])
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the exported weights: a plain state_dict of the embedding net, no classifier, strict-loadable
    sd = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert not any(k.startswith("classifier") for k in sd)
    net = build_net("facenet_mobilenet")
    net.load_state_dict(sd, strict=True)
    meta = json.loads((out / "model.json").read_text())
    assert meta["state_dict_sha256"] == registry.state_dict_sha256(sd)
    assert meta["arch"] == "facenet_mobilenet" and meta["epoch"] == 5

    # eval-mode embeddings of the clean images: identities are separated
    crops = np.stack([im for imgs in ids.values() for im in imgs])
    labels = np.repeat(np.arange(len(ids)), 6)
    emb = evaluators.embed_crops(net.eval(), crops, facenet.preprocess_fn("facenet_mobilenet"), "cpu")
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    dist = np.linalg.norm(emb[:, None] - emb[None], axis=2)
    same = labels[:, None] == labels[None]
    intra = dist[same & ~np.eye(len(labels), dtype=bool)].mean()
    inter = dist[~same].mean()
    assert inter - intra > 0.5, (intra, inter)
    np.fill_diagonal(dist, np.inf)
    assert (labels[dist.argmin(1)] == labels).mean() >= 0.9  # leave-one-out nearest neighbour


class _Stop(Exception):
    pass


def test_facenet_resume_replays_an_interrupted_run_exactly(tmp_path):
    root = write_identities(tmp_path / "faces", identity_images(3, 4, 32, seed=1))
    common_args = ["--data", str(root), "--epochs", "2", "--p", "3", "--k", "2", "--batches-per-epoch", "2",
                   *FACENET_FAST]  # fmt: skip
    assert facenet.main_train_facenet([*common_args, "--out", str(tmp_path / "a")]) == 0

    calls = []

    def crash_in_second_epoch(model):
        calls.append(1)
        if len(calls) == 2:
            raise _Stop  # after epoch 2 trained, before its checkpoint: like a killed job
        return {"probe": 0.0}

    with pytest.raises(_Stop):
        facenet.main_train_facenet([*common_args, "--out", str(tmp_path / "b")], evaluate=crash_in_second_epoch)
    ckpt = torch.load(tmp_path / "b" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 1
    assert facenet.main_train_facenet([*common_args, "--out", str(tmp_path / "b"), "--resume"]) == 0

    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [int(r["epoch"]) for r in read_log(tmp_path / "b")] == [1, 2]
    # a checkpoint also serves as --init-from (the classifier comes along and may be dropped)
    sd = common.resolve_init(str(tmp_path / "b" / "checkpoint.pt"))
    assert "classifier.weight" in sd and torch.equal(sd["last_bn.weight"], b["last_bn.weight"])


@pytest.mark.parametrize("loss", ["arcface", "cosface", "sphereface", "circle", "triplet-hard+ce"])
def test_facenet_cli_trains_with_other_losses(tmp_path, loss):
    root = write_identities(tmp_path / "faces", identity_images(3, 4, 32, seed=2))
    out = tmp_path / "run"
    argv = ["--data", str(root), "--out", str(out), "--loss", loss, "--epochs", "1", "--p", "3", "--k", "2",
            "--batches-per-epoch", "2", "--optimizer", "sgd", "--schedule", "step", *FACENET_FAST]  # fmt: skip
    assert facenet.main_train_facenet(argv) == 0
    row = read_log(out)[0]
    assert math.isfinite(float(row["train_loss"]))
    sd = torch.load(out / "model.pt", weights_only=True)
    build_net("facenet_mobilenet").load_state_dict(sd, strict=True)
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    if loss in ("arcface", "cosface", "sphereface"):
        assert ckpt["modules"]["criterion"]["weight"].shape == (3, 128)  # the margin head is checkpointed


def test_facenet_cli_rejects_bad_input(tmp_path, capsys):
    assert facenet.main_train_facenet(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "no such directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        facenet.main_train_facenet(["--data", str(tmp_path), "--out", str(tmp_path), "--loss", "nope"])


@pytest.mark.weights
@pytest.mark.skipif(
    not registry.converted_path(registry.FACENET).is_file(),
    reason="facenet-irv1 not in the weights cache: run `python -m recognition.engine fetch-weights`",
)
def test_finetune_from_pretrained_inception_resnet(tmp_path):
    root = write_identities(tmp_path / "faces", identity_images(2, 2, 160, seed=3))
    out = tmp_path / "run"
    argv = ["--data", str(root), "--out", str(out), "--backbone", "inception_resnet", "--init-from",
            registry.FACENET.name, "--epochs", "1", "--p", "2", "--k", "2", "--batches-per-epoch", "1",
            "--lr", "1e-5", "--workers", "0", "--threads", "1", "--no-progress", "--no-augment"]  # fmt: skip
    assert facenet.main_train_facenet(argv) == 0
    tuned = torch.load(out / "model.pt", weights_only=True)
    pre = registry.load_state_dict(registry.FACENET)
    assert tuned.keys() == pre.keys()
    assert not torch.equal(tuned["last_linear.weight"], pre["last_linear.weight"])  # it trained
    rel = (tuned["last_linear.weight"] - pre["last_linear.weight"]).norm() / pre["last_linear.weight"].norm()
    assert rel < 0.01  # one tiny step: still the pretrained network


LFW = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "lfw"
needs_detector_and_lfw = pytest.mark.skipif(
    not (registry.converted_path(registry.DETECTOR).is_file() and registry.converted_path(registry.FACENET).is_file()
         and (LFW / "images").is_dir()),
    reason="needs the weights cache (fetch-weights: detector + facenet-irv1) and ../shared/datasets/lfw",
)  # fmt: skip
LFW_PEOPLE = ["Aaron_Peirsol", "Abdullah_Gul", "Colin_Powell", "Serena_Williams"]


def _lfw_pairs_file(tmp_path: Path) -> Path:
    f = tmp_path / "pairs.txt"
    f.write_text(
        "3\nAaron_Peirsol 1 2\nColin_Powell 1 3\nSerena_Williams 2 3\n"
        "Aaron_Peirsol 1 Abdullah_Gul 1\nColin_Powell 2 Serena_Williams 1\nAbdullah_Gul 2 Colin_Powell 3\n"
    )
    return f


@pytest.mark.weights
@needs_detector_and_lfw
def test_align_raw_photos_then_train_with_lfw_evaluation(tmp_path):
    src = tmp_path / "raw"
    for name in LFW_PEOPLE[:2]:
        (src / name).mkdir(parents=True)
        for n in (1, 2):
            (src / name / f"{name}_{n:04d}.jpg").symlink_to(LFW / "images" / name / f"{name}_{n:04d}.jpg")
    out = tmp_path / "run"
    argv = ["--data", str(src), "--align", "--out", str(out), "--epochs", "1", "--p", "2", "--k", "2",
            "--batches-per-epoch", "1", "--eval-pairs", str(_lfw_pairs_file(tmp_path)), "--lfw-root", str(LFW),
            "--workers", "0", "--threads", "1", "--no-progress"]  # fmt: skip
    assert facenet.main_train_facenet(argv) == 0
    crops = sorted((out / "aligned").rglob("*.png"))
    assert len(crops) == 4
    # the aligned crop is exactly what the inference pipeline (Pipeline.align) makes for that photo
    from recognition.engine.align import similarity_align, template

    img = data.read_rgb(LFW / "images" / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg")
    det = RetinaFaceDetector.from_state_dict(registry.load_state_dict(registry.DETECTOR)).detect([img])[0]
    spec = registry.FACENET_MOBILENET
    want = similarity_align(img, det.landmarks[0], 160, template(160, spec.align_scale, spec.align_shift_y))[0]
    assert np.array_equal(data.read_rgb(out / "aligned" / "Aaron_Peirsol" / "Aaron_Peirsol_0001.png"), want)
    row = read_log(out)[0]
    assert 0.0 <= float(row["eval_lfw_accuracy"]) <= 1.0 and "eval_lfw_auc" in row


@pytest.mark.weights
@needs_detector_and_lfw
def test_lfw_evaluator_agrees_with_the_engine_evaluation(tmp_path):
    from recognition.engine import evaluation as ev
    from recognition.engine.embedders import MobileFaceNetEmbedder
    from recognition.engine.pipeline import Pipeline

    pairs_file = _lfw_pairs_file(tmp_path)
    torch.manual_seed(0)
    net = build_net("facenet_mobilenet").eval()  # any network: the point is the same path and figures
    got = evaluators.lfw_pairs_evaluator(pairs_file, LFW, "facenet_mobilenet", "cpu")(net)
    pairs = ev.read_pairs(pairs_file, LFW)
    detector = RetinaFaceDetector.from_state_dict(registry.load_state_dict(registry.DETECTOR))
    pipe = Pipeline(detector, MobileFaceNetEmbedder(net), registry.FACENET_MOBILENET)
    rep = ev.verification_report(ev.embed_paths(pipe, pairs.images, progress=False), pairs)
    assert got["lfw_accuracy"] == rep["accuracy_mean"] and got["lfw_auc"] == rep["auc"]
    assert got["lfw_threshold"] == pytest.approx(rep["threshold_all"], abs=1e-6)


# ------------------------------------------------------------------------------ FaceNet pieces


def test_pk_sampler_batches():
    labels = [0] * 5 + [1] * 3 + [2] * 2 + [3] * 1 + [4] * 6
    s = data.PKSampler(labels, p=3, k=4, batches=7, seed=5)
    s.set_epoch(0)
    first = list(s)
    assert len(first) == 7
    for batch in first:
        ys = [labels[i] for i in batch]
        assert len(batch) == 12
        assert len(set(ys)) == 3 and all(ys.count(y) == 4 for y in set(ys))
        assert 3 not in ys  # a singleton identity has no positive: never drawn
        for y in set(ys):  # identities with >= K images are drawn without repeats
            if labels.count(y) >= 4:
                assert len({i for i in batch if labels[i] == y}) == 4
    s.set_epoch(0)
    assert list(s) == first
    s.set_epoch(1)
    assert list(s) != first
    with pytest.raises(ValueError):
        data.PKSampler([0, 0, 1], p=2, k=2)


def test_face_augment():
    img = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    mirror = data.FaceAugment(flip=1.0, scale=0, shift=0, brightness=0, contrast=0, saturation=0)
    assert np.array_equal(mirror(img), img[:, ::-1])
    jitter = data.FaceAugment()
    outs = [jitter(img) for _ in range(4)]
    assert all(o.shape == img.shape and o.dtype == np.uint8 for o in outs)
    assert not all(np.array_equal(outs[0], o) for o in outs[1:])


def test_face_folder_and_pairs_exclusion(tmp_path):
    root = write_identities(tmp_path / "f", identity_images(3, 2, 20))
    (tmp_path / "f" / "person00" / "notes.txt").write_text("not an image")
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("2\nperson01 1 2\nperson01 1 Other_Name 3\n")
    assert data.people_in_pairs(pairs) == {"person01", "Other_Name"}
    ds = data.FaceFolder(root, size=32, exclude=frozenset(data.people_in_pairs(pairs)))
    assert ds.identities == ["person00", "person02"] and len(ds) == 4
    img, label = ds[2]
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8 and label == 1  # letterboxed 20 -> 32


def test_folder_pairs_evaluator_measures_separation():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 5)
    colours = rng.uniform(0, 255, (4, 3))
    crops = np.clip(colours[labels][:, None, None, :] + rng.normal(0, 3, (20, 8, 8, 3)), 0, 255).astype(np.uint8)

    class MeanColour(torch.nn.Module):  # an "embedder" that separates these crops perfectly
        def forward(self, x):
            return torch.nn.functional.pad(x.mean((2, 3)) - 0.5, (0, 125))

    def pre(c):
        return torch.from_numpy(c).permute(0, 3, 1, 2).float() / 255

    ev = evaluators.folder_pairs_evaluator(crops, labels, pre, "cpu")(MeanColour())
    assert ev["val_accuracy"] == 1.0 and ev["val_auc"] == 1.0
    assert ev["val_genuine_dist"] < ev["val_impostor_dist"]

    class Random(torch.nn.Module):
        def forward(self, x):
            return torch.randn(len(x), 128)

    torch.manual_seed(0)
    assert evaluators.folder_pairs_evaluator(crops, labels, pre, "cpu")(Random())["val_auc"] < 0.8


def test_lr_schedules():
    f = common.lr_factor
    assert f(0, 100, 10, "cosine", warmup_epochs=1) == pytest.approx(0.01)
    assert f(10, 100, 10, "cosine", warmup_epochs=1) == pytest.approx(1.0)
    assert f(55, 100, 10, "cosine", warmup_epochs=1) == pytest.approx(0.5)
    assert f(100, 100, 10, "cosine") == pytest.approx(0.0)
    assert [f(e * 10, 100, 10, "step", step_epochs=[3, 6]) for e in (0, 2, 3, 6, 9)] == pytest.approx(
        [1, 1, 0.1, 0.01, 0.01]
    )


def test_initial_weights_tolerate_only_the_classifier():
    net = build_net("facenet_mobilenet", num_classes=7)
    donor = build_net("facenet_mobilenet", num_classes=3).state_dict()
    common.load_initial_weights(net, donor, optional=("classifier.",))
    assert torch.equal(net.state_dict()["last_bn.running_var"], donor["last_bn.running_var"])
    del donor["last_bn.weight"]
    with pytest.raises(ValueError, match="last_bn.weight"):
        common.load_initial_weights(net, donor, optional=("classifier.",))


def test_bn_recalibration_restores_eval_mode_statistics():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    x = torch.randn(64, 4) * 5 + 3
    net.train()
    want = net(x).detach()  # batch statistics
    assert not torch.allclose(net.eval()(x), want, atol=1e-2)  # stale running stats after one step
    assert common.recalibrate_bn(net, [x]) == 1
    bias = net[1].bias.detach()
    # eval divides by the unbiased std (n / (n - 1) on the variance), training by the biased one
    assert torch.allclose((net.eval()(x) - bias) * math.sqrt(64 / 63) + bias, want, atol=1e-4)
    assert net[1].momentum == 0.1


# ------------------------------------------------------------------------------ RetinaFace


def test_retinaface_training_finds_the_faces(tmp_path):
    items = box_images(8)
    labels, images = write_wider(tmp_path / "wider", items, without_landmarks={7})
    out = tmp_path / "run"
    argv = ["--labels", str(labels), "--images", str(images), "--out", str(out), "--image-size", "64",
            "--batch-size", "8", "--epochs", "50", "--optimizer", "adamw", "--lr", "0.01", "--schedule", "cosine",
            "--no-augment", "--bn-recalibrate", "1", "--workers", "0", "--threads", "1", "--no-progress",
            "--plot-every", "100", "--val-labels", str(labels)]  # fmt: skip
    assert retinaface.main_train_retinaface(argv) == 0
    log = read_log(out)
    assert len(log) == 50
    first, last = float(log[0]["train_loss"]), float(log[-1]["train_loss"])
    assert last < 0.2 * first, (first, last)
    assert float(log[-1]["eval_recall"]) == 1.0
    assert (out / "curves.png").is_file()

    det = RetinaFaceDetector.from_state_dict(torch.load(out / "model.pt", weights_only=True), score_threshold=0.5)
    found = det.detect([im for im, _ in items])
    for k, ((_, faces), d) in enumerate(zip(items, found, strict=True)):
        gt = torch.tensor([[x, y, x + s, y + s] for x, y, s in faces], dtype=torch.float32)
        assert len(d) >= len(faces), f"image {k}: {len(d)} detections for {len(faces)} faces"
        iou = box_iou(gt, torch.from_numpy(d.boxes))
        best = iou.argmax(1)
        assert (iou.max(1).values > 0.5).all(), f"image {k}: IoU {iou.max(1).values.tolist()}"
        if k != 7:  # landmarks were labelled: they are learnt too
            want = np.array([[x + px * s, y + py * s] for x, y, s in faces for px, py in REL_LANDMARKS])
            err = np.abs(d.landmarks[best.numpy()].reshape(-1, 2) - want).max()
            assert err < 4.0, f"image {k}: landmark error {err:.1f}px"


@pytest.mark.skipif(not SHARED_RETINAFACE.is_file(), reason="../shared/models/retinaface_mobilenet0.25.pth absent")
def test_retinaface_finetunes_from_pretrained_weights_with_augmentation(tmp_path):
    labels, images = write_wider(tmp_path / "wider", box_images(4, size=96, seed=4), without_landmarks={1})
    out = tmp_path / "run"
    argv = ["--labels", str(labels), "--images", str(images), "--out", str(out), "--image-size", "64",
            "--batch-size", "2", "--epochs", "1", "--init-from", str(SHARED_RETINAFACE), "--workers", "0",
            "--threads", "1", "--no-progress"]  # fmt: skip
    assert retinaface.main_train_retinaface(argv) == 0
    assert math.isfinite(float(read_log(out)[0]["train_loss"]))
    tuned = torch.load(out / "model.pt", weights_only=True)
    RetinaFaceDetector.from_state_dict(tuned)
    assert json.loads((out / "model.json").read_text())["state_dict_sha256"] == registry.state_dict_sha256(tuned)


# ------------------------------------------------------------------------------ RetinaFace pieces


def test_read_wider_labels(tmp_path):
    f = tmp_path / "label.txt"
    f.write_text(
        "# a/one.jpg\n"
        "10 20 30 40 15 30 0.0 35 30 0.0 25 40 0.0 18 50 0.0 32 50 0.0 0.9\n"
        "50 50 10 10 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1\n"
        "5 5 0 8 1 1 0 2 2 0 3 3 0 4 4 0 5 5 0 0.5\n"
        "# b/two.jpg\n"
        "1 2 3 4\n"
        "# c/none.jpg\n"
    )
    a, b, c = wider.read_wider_labels(f, tmp_path / "imgs")
    assert a.path == tmp_path / "imgs" / "a" / "one.jpg"
    assert a.boxes.tolist() == [[10, 20, 40, 60], [50, 50, 60, 60]]  # the zero-width face is dropped
    assert a.has_landmarks.tolist() == [True, False]
    assert a.landmarks[0].tolist() == [[15, 30], [35, 30], [25, 40], [18, 50], [32, 50]]
    assert not a.landmarks[1].any()
    assert b.boxes.tolist() == [[1, 2, 4, 6]] and b.has_landmarks.tolist() == [False]
    assert len(c.boxes) == 0
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3 4\n")
    with pytest.raises(ValueError, match="before any"):
        wider.read_wider_labels(bad, tmp_path)


def test_flip_swaps_left_and_right_landmarks():
    img = np.zeros((20, 30, 3), np.uint8)
    img[:, :5] = 255
    boxes = np.array([[2.0, 3.0, 12.0, 15.0]], np.float32)
    lms = np.array([[[4, 6], [10, 6], [7, 9], [5, 12], [9, 12]]], np.float32)
    fimg, fb, fl = wider.flip(img, boxes, lms)
    assert fimg[:, -5:].min() == 255 and fimg[:, :5].max() == 0
    assert fb.tolist() == [[18, 3, 28, 15]]
    # the left eye is still image-left of the right eye: the mirrored right eye becomes the left eye
    assert fl[0].tolist() == [[20, 6], [26, 6], [23, 9], [21, 12], [25, 12]]
    back = wider.flip(fimg, fb, fl)
    assert np.array_equal(back[0], img) and np.allclose(back[1], boxes) and np.allclose(back[2], lms)


def test_random_crop_keeps_faces_whose_centre_is_inside():
    torch.manual_seed(0)
    img = np.zeros((100, 160, 3), np.uint8)
    boxes = np.array([[10, 10, 30, 30], [120, 60, 150, 95], [70, 40, 90, 60]], np.float32)
    lms = np.repeat(((boxes[:, None, :2] + boxes[:, None, 2:]) / 2), 5, axis=1)
    has = np.array([True, True, False])
    for _ in range(30):
        out = wider.random_crop(img, boxes, lms, has)
        assert out is not None
        crop, b, lm, h = out
        side = crop.shape[0]
        assert crop.shape[1] == side and len(b) >= 1 and len(b) == len(lm) == len(h)
        assert (b >= 0).all() and (b <= side).all()
        centres = lm[:, 0]  # the landmarks sit on the original box centres
        assert ((centres > 0) & (centres < side)).all()


def test_augmented_dataset_targets_stay_on_the_faces(tmp_path):
    torch.manual_seed(1)
    items = box_images(3, size=80, seed=5)
    labels, images = write_wider(tmp_path / "w", items)
    ds = wider.WiderFaceDataset(wider.read_wider_labels(labels, images), 48, wider.DetectionAugment(48))
    for _ in range(5):
        for i in range(len(ds)):
            img, t = ds[i]
            assert img.shape == (48, 48, 3) and t.shape[1] == 15 and len(t) >= 1
            assert (t[:, :4] >= 0).all() and (t[:, :4] <= 1).all()
            box, pts = t[:, :4], t[:, 4:14].reshape(-1, 5, 2)
            side = box[:, 2:] - box[:, :2]
            whole = np.abs(side[:, 0] - side[:, 1]) < 1e-3  # still square: not cut by the crop
            want = box[:, None, :2] + REL_LANDMARKS[None] * side[:, None]
            assert np.abs(pts - want)[whole].max(initial=0) < 2.5 / 48  # the dots, within resize rounding
            assert (pts[:, 0, 0] < pts[:, 1, 0]).all()  # left eye left of right eye, flipped or not


def test_match_assigns_anchors():
    priors = prior_boxes(64, 64)  # level 1: 8x8 cells x sizes 16, 32
    # a face exactly on the first anchor of cell (row 2, col 3) (cx = 28, cy = 20, side 16)
    face = torch.tensor([[20.0, 12.0, 36.0, 28.0]]) / 64
    lms = torch.full((1, 10), 0.4)
    k = (2 * 8 + 3) * 2
    m = multibox.match(face, lms, torch.tensor([True]), priors)
    assert m.label[k] == 1 and torch.allclose(m.loc[k], torch.zeros(4), atol=1e-6)
    assert m.landm_mask[k]
    assert m.label.sum() >= 1 and (m.landm_mask == (m.label > 0)).all()
    far = (2 * 8 + 7) * 2  # same row, far right: background
    assert m.label[far] == 0
    no_lm = multibox.match(face, lms, torch.tensor([False]), priors)
    assert no_lm.label[k] == 1 and not no_lm.landm_mask.any()
    # a face below the IoU threshold everywhere (8 px in a 16 px anchor: IoU 0.25) claims its best anchor
    small = torch.tensor([[24.0, 16.0, 32.0, 24.0]]) / 64
    got = multibox.match(small, lms, torch.tensor([True]), priors).label
    assert got.sum() == 1 and got[k] == 1
    # ... but one whose best IoU is under 0.2 (4 px: 0.0625) is ignored
    tiny = torch.tensor([[26.0, 18.0, 30.0, 22.0]]) / 64
    assert multibox.match(tiny, lms, torch.tensor([True]), priors).label.sum() == 0
    empty = multibox.match(torch.zeros(0, 4), torch.zeros(0, 10), torch.zeros(0, dtype=torch.bool), priors)
    assert empty.label.sum() == 0


def test_multibox_loss_mining_and_landmark_masking():
    torch.manual_seed(0)
    priors = prior_boxes(64, 64)
    a = len(priors)
    t_lm = torch.tensor([[20, 12, 36, 28] + [24, 16, 32, 16, 28, 20, 25, 24, 31, 24] + [1]], dtype=torch.float32)
    t_nolm = t_lm.clone()
    t_nolm[0, 4:] = 0
    crit = multibox.MultiBoxLoss(neg_pos_ratio=7)
    loc = torch.randn(2, a, 4, requires_grad=True)
    conf = torch.randn(2, a, 2, requires_grad=True)
    landm = torch.randn(2, a, 10, requires_grad=True)
    targets = [t_lm / 64 * torch.tensor([1.0] * 14 + [64.0]), t_nolm / 64]
    loss = crit(loc, conf, landm, targets, priors)
    loss.backward()
    assert torch.isfinite(loss)
    m = crit.targets(targets, priors)
    n_pos = [int(x.label.sum()) for x in m]
    assert n_pos[0] == n_pos[1] >= 1
    # classification sees the positives and exactly 7x as many negatives per image
    assert [int((conf.grad[i].abs().sum(1) > 0).sum()) for i in range(2)] == [8 * p for p in n_pos]
    # the hardest negatives: every selected negative scores at least as "face" as any unselected one
    bg = torch.logsumexp(conf[0], 1) - conf[0, :, 0]
    sel_neg = (conf.grad[0].abs().sum(1) > 0) & (m[0].label == 0)
    assert bg[sel_neg].min() >= bg[~sel_neg & (m[0].label == 0)].max()
    # landmarks: only the image whose face has them
    assert landm.grad[0].abs().sum() > 0 and landm.grad[1].abs().sum() == 0
    assert (loc.grad[1].abs().sum(1) > 0).sum() == n_pos[1]
    # a perfect box regression gives zero box loss
    loc2 = torch.stack([x.loc for x in m]).clone()
    crit(loc2, conf.detach(), landm.detach(), targets, priors)
    assert crit.components["box_loss"] == 0.0
