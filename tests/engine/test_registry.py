"""The weights registry on a tiny fake model: local sources, checksums,
conversion, cache hits and clear errors. Never touches the network."""

import dataclasses
import hashlib
import zipfile

import pytest
import torch

from recognition.engine import registry

RAW = b"tiny raw model bytes"


def to_state_dict_bytes(data):
    return {"weight": torch.tensor(list(data[:4]), dtype=torch.float32)}


def to_state_dict(raw_path):
    return to_state_dict_bytes(raw_path.read_bytes())


@pytest.fixture
def spec(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(registry.MODEL_DIR_ENV, str(tmp_path / "local"))
    (tmp_path / "local").mkdir()
    monkeypatch.setattr(registry, "_pip_download", lambda req, dest: pytest.fail("tried the network"))
    expected = registry.state_dict_sha256(to_state_dict_bytes(RAW))
    return registry.ModelSpec(
        name="tiny", version="1", kind="embedder", arch="none", description="test", licence="none",
        raw_filename="tiny.bin", raw_sha256=hashlib.sha256(RAW).hexdigest(),
        source=registry.PypiSource("tiny-model==1.0", "tiny_model/tiny.bin"),
        converter=f"{__name__}:to_state_dict", converted_sha256=expected,
    )


def test_state_dict_digest_depends_on_names_shapes_and_values():
    a = {"w": torch.zeros(2, 3)}
    assert registry.state_dict_sha256(a) == registry.state_dict_sha256({"w": torch.zeros(2, 3)})
    assert registry.state_dict_sha256(a) != registry.state_dict_sha256({"v": torch.zeros(2, 3)})
    assert registry.state_dict_sha256(a) != registry.state_dict_sha256({"w": torch.zeros(3, 2)})
    assert registry.state_dict_sha256(a) != registry.state_dict_sha256({"w": torch.ones(2, 3)})


def test_fetch_from_a_local_wheel_then_cache_hit(spec, tmp_path):
    with zipfile.ZipFile(tmp_path / "local" / "tiny_model-1.0-py3-none-any.whl", "w") as zf:
        zf.writestr("tiny_model/tiny.bin", RAW)
    messages = []
    out = registry.fetch(spec, progress=messages.append)
    assert out == registry.converted_path(spec) and out.is_file()
    assert any("tiny_model-1.0" in m for m in messages)
    assert registry.raw_path(spec).read_bytes() == RAW
    # Second run: no source needed at all.
    (tmp_path / "local" / "tiny_model-1.0-py3-none-any.whl").unlink()
    messages.clear()
    registry.fetch(spec, progress=messages.append)
    assert any("cached" in m for m in messages)
    assert torch.equal(registry.load_state_dict(spec)["weight"], torch.tensor(list(RAW[:4]), dtype=torch.float32))


def test_raw_checksum_mismatch_is_an_error_and_nothing_is_cached(spec, tmp_path):
    (tmp_path / "local" / "tiny.bin").write_bytes(b"tampered bytes")
    with pytest.raises(registry.WeightsError, match="checksum mismatch"):
        registry.fetch(spec, progress=None)
    assert not registry.converted_path(spec).exists()


def test_converted_checksum_mismatch_is_an_error(spec, tmp_path):
    (tmp_path / "local" / "tiny.bin").write_bytes(RAW)
    bad = dataclasses.replace(spec, converted_sha256="0" * 64)
    with pytest.raises(registry.WeightsError, match="pinned digest"):
        registry.fetch(bad, progress=None)


def test_corrupt_cache_file_is_refused_with_advice(spec, tmp_path):
    (tmp_path / "local" / "tiny.bin").write_bytes(RAW)
    registry.fetch(spec, progress=None)
    torch.save({"weight": torch.zeros(4)}, registry.converted_path(spec))
    with pytest.raises(registry.WeightsError, match="fetch-weights again"):
        registry.load_state_dict(spec)
    registry.converted_path(spec).write_bytes(b"garbage")
    with pytest.raises(registry.WeightsError, match="unreadable"):
        registry.load_state_dict(spec)


def test_missing_weights_tell_how_to_fetch(spec):
    with pytest.raises(registry.WeightsError, match="fetch-weights"):
        registry.load_state_dict(spec)


def test_every_pretrained_model_is_pinned():
    for spec in registry.MODELS.values():
        if spec.pretrained:
            assert len(spec.raw_sha256) == 64 and len(spec.converted_sha256) == 64, spec.name
            assert "==" in spec.source.requirement, spec.name
    assert registry.get_spec(registry.DEFAULT_EMBEDDER).kind == "embedder"
    with pytest.raises(registry.WeightsError, match="unknown model"):
        registry.get_spec("nope")


def test_a_locally_trained_model_is_a_first_class_embedder(tmp_path):
    import json

    import numpy as np

    from recognition.engine.embedders import build_net
    from recognition.engine.pipeline import load_embedder

    net = build_net("facenet_mobilenet")
    sd = net.state_dict()
    torch.save(sd, tmp_path / "model.pt")
    meta = {"arch": "facenet_mobilenet", "state_dict_sha256": registry.state_dict_sha256(sd), "epoch": 1}
    (tmp_path / "model.json").write_text(json.dumps(meta))
    spec = registry.get_spec(f"local:{tmp_path}")
    assert spec.kind == "embedder" and spec.version == meta["state_dict_sha256"][:12]
    assert spec.align_scale == registry.FACENET_MOBILENET.align_scale
    emb = load_embedder(spec, torch.device("cpu"))
    vectors = emb.embed(np.random.default_rng(0).integers(0, 255, (2, 160, 160, 3), dtype=np.uint8))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Tampered weights are refused.
    torch.save({k: v + 1 if v.is_floating_point() else v for k, v in sd.items()}, tmp_path / "model.pt")
    with pytest.raises(registry.WeightsError, match="pinned digest"):
        registry.load_state_dict(spec)
    with pytest.raises(registry.WeightsError, match="train-facenet output"):
        registry.get_spec(f"local:{tmp_path / 'nope'}")
