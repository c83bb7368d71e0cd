"""Embedder interface checks on randomly initialised nets (no weights needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recognition.engine.embedders import (
    EMBEDDER_CLASSES,
    FaceNetEmbedder,
    MobileFaceNetEmbedder,
    SFaceEmbedder,
    build_net,
)
from recognition.engine.nets.mobilenet_v1 import FaceNetMobileNet

torch.set_num_threads(2)


def _crops(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def embedders() -> dict[str, object]:
    torch.manual_seed(0)
    out = {}
    for arch, cls in EMBEDDER_CLASSES.items():
        net = build_net(arch)
        # Calibrate BN running statistics on a few inputs: a freshly initialised net in eval mode
        # otherwise maps every input to (almost) the same vector and "different inputs differ"
        # could not be tested.
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = None  # cumulative average
        emb = cls(net)
        net.train()
        with torch.no_grad():
            net(emb.preprocess(_crops(4, emb.input_size, seed=9)))
        out[arch] = cls(net)  # back in eval mode
    return out


def test_mobilenet_backbone_is_1024x5x5_at_160() -> None:
    net = FaceNetMobileNet().eval()
    with torch.inference_mode():
        assert net.backbone(torch.zeros(1, 3, 160, 160)).shape == (1, 1024, 5, 5)


@pytest.mark.parametrize("arch", sorted(EMBEDDER_CLASSES))
def test_embeddings_are_unit_norm_float32(embedders, arch: str) -> None:
    emb = embedders[arch]
    e = emb.embed(_crops(3, emb.input_size), batch_size=2)
    assert e.shape == (3, 128) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert not emb.net.training


@pytest.mark.parametrize("arch", sorted(EMBEDDER_CLASSES))
def test_eval_is_deterministic_and_batch_independent(embedders, arch: str) -> None:
    emb = embedders[arch]
    x = _crops(3, emb.input_size, seed=1)
    a = emb.embed(x, batch_size=3)
    b = emb.embed(x, batch_size=1)
    np.testing.assert_allclose(a, b, atol=1e-5)  # eval-mode BN: no batch statistics leak in
    np.testing.assert_array_equal(a, emb.embed(x, batch_size=3))
    assert not np.allclose(a[0], a[1], atol=1e-3)  # different inputs, different embeddings


def test_input_sizes_and_shape_check(embedders) -> None:
    assert embedders["sface"].input_size == 112
    assert embedders["facenet_inception_resnet"].input_size == 160
    assert embedders["facenet_mobilenet"].input_size == 160
    with pytest.raises(ValueError):
        embedders["sface"].embed(_crops(1, 160))
    assert embedders["sface"].embed(np.zeros((0, 112, 112, 3), np.uint8)).shape == (0, 128)


@pytest.mark.parametrize("arch", ["facenet_inception_resnet", "facenet_mobilenet"])
def test_classifier_only_with_num_classes(arch: str) -> None:
    plain = build_net(arch)
    assert plain.classifier is None
    assert not any(k.startswith("classifier") for k in plain.state_dict())
    net = build_net(arch, num_classes=7).eval()
    assert net.classifier.out_features == 7
    x = torch.randn(2, 3, 160, 160)
    with torch.inference_mode():
        emb, logits = net.forward_train(x)
        feats = net.forward_features(x)
        assert logits.shape == (2, 7)
        # classifier sits on the pre-normalisation vector
        torch.testing.assert_close(logits, net.classifier(feats))
        torch.testing.assert_close(emb, torch.nn.functional.normalize(feats, dim=1))
    # the plain net's weights load into the trainable one (minus the head) and vice versa
    net.load_state_dict(plain.state_dict(), strict=False)
    with pytest.raises(ValueError):
        build_net("sface", num_classes=3)
    with pytest.raises(ValueError):
        build_net("nope")


def test_preprocessing() -> None:
    x = _crops(2, 112)
    t = SFaceEmbedder(build_net("sface")).preprocess(x)
    assert t.shape == (2, 3, 112, 112) and t.dtype == torch.float32
    np.testing.assert_array_equal(t[:, 0].numpy(), x[..., 2])  # channel 0 is blue: BGR
    np.testing.assert_array_equal(t[:, 2].numpy(), x[..., 0])

    x = _crops(2, 160)
    t = FaceNetEmbedder(build_net("facenet_inception_resnet")).preprocess(x)
    np.testing.assert_allclose(t.mean(dim=(1, 2, 3)).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(t.std(dim=(1, 2, 3), unbiased=False).numpy(), 1.0, atol=1e-4)
    flat = np.full((1, 160, 160, 3), 77, np.uint8)  # zero std: clamped, no NaN
    assert torch.isfinite(FaceNetEmbedder.preprocess(flat)).all()

    t = MobileFaceNetEmbedder(build_net("facenet_mobilenet")).preprocess(x)
    np.testing.assert_allclose(t.permute(0, 2, 3, 1).numpy(), x / 255.0, atol=1e-6)


def test_fp16_request_on_cpu_stays_fp32() -> None:
    emb = MobileFaceNetEmbedder(build_net("facenet_mobilenet"), fp16=True)
    assert not emb.fp16
    np.testing.assert_allclose(np.linalg.norm(emb.embed(_crops(1, 160)), axis=1), 1.0, atol=1e-5)
