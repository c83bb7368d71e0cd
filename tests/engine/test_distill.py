"""Distillation (``train-facenet --loss distill``): the loss, the crop geometry, the teacher cache,
and a tiny run where the student's embeddings move onto the teacher's."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from torch import nn

from recognition.engine import registry
from recognition.engine.align import template, transform_points
from recognition.engine.embedders import Embedder, build_net
from recognition.engine.training import data, distill, evaluators, facenet

from .conftest import write_identities


def identity_images(n_ids: int, per_id: int, size: int, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Synthetic "people": each its own stripe colours, frequency and angle; images jitter."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = {}
    for i in range(n_ids):
        c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        ang, freq = rng.uniform(0, np.pi), rng.uniform(1, 4)
        imgs = []
        for _ in range(per_id):
            dx, dy = rng.uniform(-0.05, 0.05, 2)
            t = 0.5 + 0.5 * np.sin(2 * np.pi * freq * ((xx + dx) * np.cos(ang) + (yy + dy) * np.sin(ang)))
            img = t[..., None] * c1 + (1 - t[..., None]) * c2 + rng.normal(0, 8, (size, size, 3))
            imgs.append(np.clip(img, 0, 255).astype(np.uint8))
        out[f"person{i:02d}"] = imgs
    return out



FAST = ["--input-size", "32", "--workers", "0", "--threads", "1", "--no-progress", "--plot-every", "100"]



class ToyTeacher(Embedder):
    """A fixed random map of a coarse 4x4 colour grid: varied, smooth, needs no weights."""

    name, version, arch, input_size = "toy", "1", "toy", 112
    calls = 0

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(7)
        lin = nn.Linear(48, 128, bias=False)
        lin.weight.data = torch.randn(128, 48, generator=g)
        super().__init__(nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), lin))

    @staticmethod
    def preprocess(crops: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255.0 - 0.5

    def embed(self, crops: np.ndarray, batch_size: int = 32) -> np.ndarray:
        type(self).calls += len(crops)
        return super().embed(crops, batch_size)


def naive_distill(s: torch.Tensor, t: torch.Tensor, rel_weight: float) -> float:
    s = [v / v.norm() for v in s]
    t = [v / v.norm() for v in t]
    n = len(s)
    direct = sum(1 - float(s[i] @ t[i]) for i in range(n)) / n
    rel = [(float(s[i] @ s[j]) - float(t[i] @ t[j])) ** 2 for i in range(n) for j in range(n) if i != j]
    return direct + rel_weight * sum(rel) / max(1, len(rel))


def test_distill_loss_matches_naive_formula_and_vanishes_on_the_teacher():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 128, generator=g), torch.randn(6, 128, generator=g)
    for w in (0.0, 1.0, 3.0):
        loss = distill.DistillLoss(rel_weight=w)
        assert float(loss(s, t)) == pytest.approx(naive_distill(s, t, w), rel=1e-5)
    loss = distill.DistillLoss()
    assert float(loss(3.0 * t, t)) == pytest.approx(0.0, abs=1e-6)  # scale of the features is free
    assert loss.components["teacher_cos"] == pytest.approx(1.0, abs=1e-6)
    x = s.clone().requires_grad_(True)
    loss(x, t).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert float(loss(s[:1], t[:1])) == pytest.approx(naive_distill(s[:1], t[:1], 0.0), rel=1e-5)  # n = 1


def test_crop_transform_maps_the_student_template_onto_the_teachers():
    student, teacher = registry.FACENET_MOBILENET, registry.SFACE
    m = distill.crop_transform(160, student, 112, teacher)
    got = transform_points(template(160, student.align_scale, student.align_shift_y), m)
    np.testing.assert_allclose(got, template(112, teacher.align_scale, teacher.align_shift_y), atol=1e-3)
    # 0.8-scaled 160 template -> 112: the teacher sees the central 128 px, shrunk by 112 / 128
    np.testing.assert_allclose(m, [[0.875, 0, -14], [0, 0.875, -14]], atol=1e-4)
    np.testing.assert_allclose(distill.crop_transform(112, teacher, 112, teacher), np.eye(2, 3), atol=1e-5)
    crop = np.zeros((160, 160, 3), np.uint8)
    crop[16:144, 16:144] = 200  # exactly the teacher's field of view
    out = distill.teacher_crop(crop, m, 112)
    assert out.shape == (112, 112, 3) and (out[2:-2, 2:-2] == 200).all()


def test_teacher_embeddings_are_cached_per_image(tmp_path):
    root = write_identities(tmp_path / "faces", identity_images(3, 3, 32, seed=4))
    ds = data.FaceFolder(root, 32)
    m = distill.crop_transform(32, registry.FACENET_MOBILENET, 112, registry.SFACE)
    teacher = ToyTeacher()
    ToyTeacher.calls = 0
    cache = tmp_path / "cache" / "t.npz"
    first = distill.teacher_embeddings(ds, teacher, m, cache, flip=True, batch_size=4, progress=False)
    assert first.shape == (9, 128) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert ToyTeacher.calls == 18  # each image and its mirror, once
    # flip averaging: the normalised sum of the plain and mirrored embeddings
    crops = np.stack([distill.teacher_crop(ds.load(i), m, 112) for i in range(len(ds))])
    v = teacher.embed(crops) + teacher.embed(np.ascontiguousarray(crops[:, :, ::-1]))
    np.testing.assert_allclose(first, v / np.linalg.norm(v, axis=1, keepdims=True), atol=1e-5)

    ToyTeacher.calls = 0
    again = distill.teacher_embeddings(ds, teacher, m, cache, flip=True, progress=False)
    assert ToyTeacher.calls == 0 and np.array_equal(again, first)
    # a new image: only it is embedded; the cache follows content, not folder order
    write_identities(root, {"aaa": identity_images(1, 2, 32, seed=9)["person00"]})
    ds2 = data.FaceFolder(root, 32)
    ToyTeacher.calls = 0
    grown = distill.teacher_embeddings(ds2, teacher, m, cache, flip=True, progress=False)
    assert ToyTeacher.calls == 4 and grown.shape == (11, 128)
    np.testing.assert_allclose(grown[2:], first, atol=0)  # "aaa" sorts first


def _agreement(model_file, ds, targets) -> float:
    net = build_net("facenet_mobilenet")
    net.load_state_dict(torch.load(model_file, weights_only=True), strict=True)
    crops = np.stack([ds.load(i) for i in range(len(ds))])
    emb = evaluators.embed_crops(net.eval(), crops, facenet.preprocess_fn("facenet_mobilenet"), "cpu")
    return distill.agreement(emb, targets)


def test_distill_cli_moves_the_student_onto_the_teacher(tmp_path, monkeypatch):
    # the teacher loader distill.prepare calls: a weights-free toy in place of SFace (sface's template stays)
    monkeypatch.setattr("recognition.engine.pipeline.load_embedder", lambda *a, **k: ToyTeacher())
    root = write_identities(tmp_path / "faces", identity_images(4, 5, 32, seed=5))
    out = tmp_path / "run"
    base = ["--data", str(root), "--loss", "distill", "--teacher", "sface", "--p", "4", "--k", "5",
            "--batches-per-epoch", "5", "--lr", "3e-3", "--bn-recalibrate", "1", "--no-augment",
            *FAST]  # fmt: skip
    start = tmp_path / "start"  # lr 0: the initial weights (BatchNorm statistics recalibrated)
    assert facenet.main_train_facenet([*base, "--out", str(start), "--epochs", "1", "--lr", "0"]) == 0
    assert facenet.main_train_facenet([*base, "--out", str(out), "--epochs", "4"]) == 0

    with open(out / "log.csv") as f:
        log = list(csv.DictReader(f))
    cos = [float(r["train_teacher_cos"]) for r in log]
    assert cos[-1] > cos[0] + 0.2 and cos[-1] > 0.7, cos
    assert float(log[-1]["train_loss"]) < 0.5 * float(log[0]["train_loss"])
    meta = json.loads((out / "model.json").read_text())
    assert meta["teacher"]["name"] == "sface" and meta["loss"] == "distill"

    # eval mode on the clean crops: the trained student agrees with the teacher, the untrained one not
    ds = data.FaceFolder(root, 32)
    cache = next(out.glob("teacher-sface-*.npz"))
    # every image is in the run's cache, so the (here meaningless) geometry is never used
    targets = distill.teacher_embeddings(ds, ToyTeacher(), np.zeros((2, 3)), cache, progress=False)
    before, after = _agreement(start / "model.pt", ds, targets), _agreement(out / "model.pt", ds, targets)
    assert after > before + 0.3 and after > 0.7, (before, after)


def test_distill_cli_rejects_bad_teacher_and_args(tmp_path, capsys):
    root = write_identities(tmp_path / "faces", identity_images(2, 2, 32, seed=6))
    argv = ["--data", str(root), "--out", str(tmp_path / "o"), "--loss", "distill", "--epochs", "1", *FAST]
    assert facenet.main_train_facenet([*argv, "--teacher", "retinaface-mnet0.25"]) == 2
    assert "not a pretrained embedder" in capsys.readouterr().err
    assert facenet.main_train_facenet([*argv, "--loss-arg", "alpha=0.2"]) == 2
    assert "rel_weight" in capsys.readouterr().err


@pytest.mark.weights
@pytest.mark.skipif(
    not registry.converted_path(registry.SFACE).is_file(),
    reason="sface not in the weights cache: run `python -m recognition.engine fetch-weights`",
)
def test_distill_from_real_sface_raises_student_teacher_cosine(tmp_path):
    root = write_identities(tmp_path / "faces", identity_images(3, 4, 32, seed=8))
    out = tmp_path / "run"
    argv = ["--data", str(root), "--out", str(out), "--loss", "distill", "--teacher", "sface",
            "--epochs", "3", "--p", "3", "--k", "4", "--batches-per-epoch", "4", "--lr", "3e-3",
            "--bn-recalibrate", "1", "--no-augment", "--no-teacher-flip", *FAST]  # fmt: skip
    assert facenet.main_train_facenet(argv) == 0
    with open(out / "log.csv") as f:
        cos = [float(r["train_teacher_cos"]) for r in csv.DictReader(f)]
    assert cos[-1] > cos[0] + 0.1, cos
