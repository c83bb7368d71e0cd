"""Fixtures of the service tests: people with different rights, sites, cameras, images, a fake engine.

The database and Redis come from the root conftest (real PostgreSQL + pgvector, real Redis).
The fake pipeline lets API and decision tests run without model weights: it reads the colour of an
image's top-left pixel and answers the faces registered for that colour. The end-to-end tests use the
real engine in a real Celery worker instead.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[3] / "shared"
LFW_IMAGES = SHARED / "datasets" / "lfw" / "images"
# Used only while the registry has no measured identification threshold for the default embedder:
# SFace on the end-to-end photos gives 0.71-0.95 for the same person and >= 1.23 for different people.
FALLBACK_THRESHOLD = 1.1


def engine_missing_reason() -> str | None:
    """Why the real-engine tests cannot run here (weights cache or LFW missing), or None."""
    from recognition.engine import registry

    specs = [registry.DETECTOR, registry.get_spec(registry.default_embedder_name())]
    absent = [str(registry.converted_path(s)) for s in specs if not registry.converted_path(s).is_file()]
    if absent:
        return f"engine weights cache missing ({', '.join(absent)}): run `python -m recognition.engine fetch-weights`"
    if not LFW_IMAGES.is_dir():
        return f"LFW not found at {LFW_IMAGES}"
    return None


def site_threshold() -> float | None:
    """The default embedder's identification threshold from the registry (None until measured)."""
    from recognition.engine import registry

    return registry.get_spec(registry.default_embedder_name()).default_threshold


# ---------------------------------------------------------------- images ------------------------------------

def image_bytes(
    color: tuple[int, int, int] = (10, 20, 30), size: tuple[int, int] = (96, 80), fmt: str = "PNG"
) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def media_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file()) if Path(root).exists() else []


# ---------------------------------------------------------------- fake engine -------------------------------

def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(128).astype(np.float32)
    return v / np.linalg.norm(v)


def near(vec: np.ndarray, distance: float, seed: int = 0) -> np.ndarray:
    """A unit vector at exactly ``distance`` (Euclidean) from unit ``vec``."""
    r = np.random.default_rng(seed).standard_normal(128).astype(np.float64)
    r -= r.dot(vec) * vec
    r /= np.linalg.norm(r)
    cos = 1.0 - distance**2 / 2.0
    out = cos * vec.astype(np.float64) + np.sqrt(max(0.0, 1.0 - cos**2)) * r
    return (out / np.linalg.norm(out)).astype(np.float32)


def fake_face(embedding: np.ndarray | None, score: float = 0.99, size: float = 120.0, live: float = 0.9):
    """A face as the engine returns it; ``live`` is what the fake's liveness model will score it (a print: low)."""
    from recognition.engine.types import Face, FaceQuality

    box = np.array([10, 10, 10 + size, 10 + size], np.float32)
    landmarks = np.array([[40, 50], [80, 50], [60, 70], [45, 95], [75, 95]], np.float32)
    crop = np.full((112, 112, 3), 128, np.uint8)
    face = Face(box, score, landmarks, FaceQuality(size, 50.0, 1.0, 2.0), embedding, crop)
    face.true_live = live  # not the Face's liveness: that stays None until somebody scores it
    return face


@dataclass
class FakePipeline:
    embedder_name: str = "fake"
    embedder_version: str = "1"
    default_threshold: float = 0.9
    faces_by_color: dict = field(default_factory=dict)
    calls: int = 0
    error: Exception | None = None
    detections: list = field(default_factory=list)  # the detection policy of each call
    liveness_calls: list = field(default_factory=list)  # how many faces each score_liveness call scored
    liveness_error: Exception | None = None  # e.g. liveness not installed in this worker

    def register(self, color: tuple[int, int, int], faces: list) -> bytes:
        self.faces_by_color[tuple(color)] = faces
        return image_bytes(color)

    def faces(self, images, embed: bool = True, return_crops: bool = False, flip_tta: bool = False,
              detection=None):
        self.detections.append(detection)
        self.calls += 1
        if self.error is not None:
            raise self.error
        out = []
        for image in images:
            key = tuple(int(c) for c in image[0, 0])
            faces = [fake_face(f.embedding, f.score, f.quality.size_px, f.true_live)
                     for f in self.faces_by_color.get(key, [])]
            for f in faces:
                f.crop = f.crop if return_crops else None
            out.append(faces)
        return out

    def score_liveness(self, image, faces) -> list[float]:
        if self.liveness_error is not None:
            raise self.liveness_error
        self.liveness_calls.append(len(faces))
        for f in faces:
            f.liveness = f.true_live
        return [f.true_live for f in faces]


def hold_pipeline(monkeypatch, pipe, settings=None):
    """``pipe`` as its model's pipeline, already "loaded" in this process's pipeline holder (for the test only);
    with ``settings``, also the configured embedder."""
    from recognition import pipelines

    if settings is not None:
        settings.FACEACCESS_EMBEDDER = pipe.embedder_name
    monkeypatch.setitem(pipelines._loaded, pipe.embedder_name, pipe)
    return pipe


@pytest.fixture
def fake_pipeline(settings, monkeypatch) -> FakePipeline:
    """The fake is the current embedder, already "loaded" in this process's pipeline holder."""
    return hold_pipeline(monkeypatch, FakePipeline(), settings)


@pytest.fixture
def next_model(fake_pipeline, monkeypatch) -> FakePipeline:
    """A second model ("next", version "2") held beside the current one, seeing the same faces."""
    return hold_pipeline(monkeypatch, FakePipeline("next", "2", faces_by_color=fake_pipeline.faces_by_color))


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Tasks run inline when queued (on commit): API tests see the worker's result without a worker."""
    from faceaccess.celery import app

    old = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = old


@pytest.fixture
def media(settings, tmp_path) -> Path:
    """A private MEDIA_ROOT per test, so 'no file left behind' can be checked exactly."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


# ---------------------------------------------------------------- people & clients --------------------------

@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # tests only


@dataclass
class Users:
    owner: object  # superuser: an admin
    teammate: object  # an operator: enrolls people, reviews the log
    outsider: object  # a logged-in account without a role


@pytest.fixture
def users(django_user_model) -> Users:
    from faceaccess import roles

    owner = django_user_model.objects.create_user("owner", password="pw-owner", is_staff=True, is_superuser=True)
    teammate = django_user_model.objects.create_user("teammate", password="pw-teammate", is_staff=True)
    roles.set_role(teammate, roles.OPERATOR)
    outsider = django_user_model.objects.create_user("outsider", password="pw-outsider")
    return Users(owner, teammate, outsider)


def token_client(user=None):
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    client = APIClient()
    if user is not None:
        _, token = AuthToken.objects.create(user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def owner_client(users):
    return token_client(users.owner)


@pytest.fixture
def anon_client():
    return token_client(None)


# ---------------------------------------------------------------- sites & cameras ---------------------------

@dataclass
class CameraKey:
    camera: object
    key: str

    def client(self):
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {self.key}")
        return client

    def decided(self, data: bytes) -> dict:
        """Post a snapshot, wait for its decision (tasks run inline) and return the event's JSON."""
        f = io.BytesIO(data)
        f.name = "snap.png"
        response = self.client().post("/api/v1/snapshots/?wait=2", {"image": f}, format="multipart")
        assert response.status_code == 200, response.content
        return response.json()


def make_camera(site, name: str = "door", active: bool = True) -> CameraKey:
    from access.models import Camera

    camera = Camera(site=site, name=name, active=active)
    key = camera.set_new_key()
    camera.save()
    return CameraKey(camera, key)


@pytest.fixture
def site(db):
    from access.models import Site

    return Site.objects.create(name="HQ", match_threshold=0.9, min_face_px=40, min_detection_score=0.9)


@pytest.fixture
def camera(site) -> CameraKey:
    return make_camera(site)


def make_person(name: str, sites=(), **fields):
    from enrollment.models import Person

    person = Person.objects.create(name=name, **fields)
    person.sites.set(sites)
    return person


def enroll_vector(person, vec: np.ndarray, model: tuple[str, str] = ("fake", "1")):
    """An enrolled face image with one embedding, without the engine (for matching and decisions)."""
    from django.core.files.base import ContentFile

    from enrollment.models import FaceEmbedding, FaceImage

    face = FaceImage(person=person, status=FaceImage.Status.ENROLLED)
    face.image.save("face.png", ContentFile(image_bytes()), save=False)
    face.save()
    return FaceEmbedding.objects.create(
        person=person, face_image=face, embedding=vec.tolist(), model_name=model[0], model_version=model[1]
    )


# ---------------------------------------------------------------- roles -------------------------------------

@dataclass
class Staff:
    admin: object
    operator: object
    auditor: object
    norole: object  # logged in, is_staff even, but no role: gets nothing


@pytest.fixture
def staff(django_user_model) -> Staff:
    from faceaccess import roles

    made = {}
    for name in ("admin", "operator", "auditor", "norole"):
        user = django_user_model.objects.create_user(f"{name}-user", password=f"pw-{name}", is_staff=True)
        if name != "norole":
            roles.set_role(user, name)
        made[name] = user
    return Staff(**made)
