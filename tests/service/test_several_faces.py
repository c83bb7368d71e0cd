"""Photos with several faces: the worker keeps every face, enrolls a dominant one, and a person chooses
otherwise (POST /api/v1/faces/<id>/choose/), without the engine."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest

from enrollment.embedding import embed_face_image, reembed_all
from enrollment.models import FaceEmbedding, FaceImage

from .conftest import FakePipeline, fake_face, hold_pipeline, image_bytes, make_person, media_files, unit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]

WIDTH, HEIGHT = 400, 300


@dataclasses.dataclass
class PlacedPipeline(FakePipeline):
    """The conftest fake, but each face keeps the box it was registered with (a face has a place)."""

    def faces(self, images, embed: bool = True, return_crops: bool = False, flip_tta: bool = False):
        self.calls += 1
        out = []
        for image in images:
            key = tuple(int(c) for c in image[0, 0])
            out.append([dataclasses.replace(f, crop=f.crop if return_crops else None)
                        for f in self.faces_by_color.get(key, [])])
        return out

    def register(self, color: tuple[int, int, int], faces: list) -> bytes:
        self.faces_by_color[tuple(color)] = faces
        return image_bytes(color, size=(WIDTH, HEIGHT))


def face_at(vec: np.ndarray, cx: float, cy: float, size: float, score: float = 0.99):
    """A face of ``size`` px centred at (cx, cy)."""
    face = fake_face(vec, score, size)
    half = size / 2
    face.box = np.array([cx - half, cy - half, cx + half, cy + half], np.float32)
    face.landmarks = face.landmarks - np.array([40.0, 50.0], np.float32) + np.array([cx - 20, cy - 20], np.float32)
    return face


@pytest.fixture
def placed(settings, monkeypatch) -> PlacedPipeline:
    return hold_pipeline(monkeypatch, PlacedPipeline(), settings)


@pytest.fixture
def alice():
    return make_person("Alice")


def upload(client, person, data: bytes) -> dict:
    f = io.BytesIO(data)
    f.name = "alice_1.png"
    response = client.post(f"/api/v1/people/{person.pk}/faces/", {"image": f}, format="multipart")
    assert response.status_code == 202, response.content
    return client.get(response["Location"]).json()


def choose(client, image_id: int, face) -> object:
    return client.post(f"/api/v1/faces/{image_id}/choose/", {"face": face}, format="json")


# Two people side by side, the same size, neither in the middle: nobody dominates.
PAIR = [(unit(1), 130, 150, 100), (unit(2), 270, 150, 100)]


@pytest.fixture
def pair_photo(owner_client, placed, alice, media) -> dict:
    data = placed.register((20, 20, 20), [face_at(v, x, y, s) for v, x, y, s in PAIR])
    return upload(owner_client, alice, data)


# ---------------------------------------------------------------- the worker --------------------------------

def test_the_worker_stores_every_face_with_its_embedding(pair_photo):
    assert pair_photo["status"] == "several_faces"
    assert "none dominates" in pair_photo["reason"]
    assert f"/api/v1/faces/{pair_photo['id']}/choose/" in pair_photo["reason"]
    assert pair_photo["chosen_face"] is None and pair_photo["choose_url"].endswith(f"/faces/{pair_photo['id']}/choose/")
    faces = pair_photo["faces"]
    assert [f["index"] for f in faces] == [0, 1]
    assert [f["box"] for f in faces] == [[80.0, 100.0, 180.0, 200.0], [220.0, 100.0, 320.0, 200.0]]
    assert all(len(f["landmarks"]) == 5 and f["score"] == pytest.approx(0.99) and f["usable"] for f in faces)
    assert "embedding" not in faces[0]  # kept in the database, not shown
    stored = FaceImage.objects.get().candidates
    for candidate, (vec, *_place) in zip(stored, PAIR, strict=True):
        assert (candidate["model_name"], candidate["model_version"]) == ("fake", "1")
        assert candidate["embedding"] == pytest.approx(vec.tolist(), abs=1e-6)
    assert not FaceEmbedding.objects.exists()


def test_unusable_faces_are_stored_too_and_marked(owner_client, placed, alice, media):
    faces = [face_at(unit(1), 200, 150, 120), face_at(unit(2), 40, 40, 24), face_at(unit(3), 350, 60, 80, 0.5)]
    photo = upload(owner_client, alice, placed.register((21, 21, 21), faces))
    assert (photo["status"], photo["chosen_face"]) == ("enrolled", 0)
    assert photo["choice_reason"] == "the only usable face of 3"
    assert [f["usable"] for f in photo["faces"]] == [True, False, False]
    assert "24 px" in photo["faces"][1]["unusable_reason"] and "0.50" in photo["faces"][2]["unusable_reason"]
    assert photo["choose_url"] is None  # one usable face: nothing to choose
    assert [c["embedding"] for c in FaceImage.objects.get().candidates] == [None, None, None]  # none kept


def test_a_single_face_is_recorded_as_taken(owner_client, placed, alice, media):
    photo = upload(owner_client, alice, placed.register((22, 22, 22), [face_at(unit(1), 200, 150, 120)]))
    assert (photo["status"], photo["chosen_face"], photo["choice_reason"]) == ("enrolled", 0, "the only face")


def test_a_dominant_face_is_enrolled_with_its_reason(owner_client, placed, alice, media):
    # The big face is listed second (detector order is by score): the index recorded is its own.
    faces = [face_at(unit(1), 330, 60, 60, score=0.999), face_at(unit(2), 190, 160, 150, score=0.98)]
    photo = upload(owner_client, alice, placed.register((23, 23, 23), faces))
    assert (photo["status"], photo["chosen_face"]) == ("enrolled", 1)
    assert photo["choice_reason"].startswith("largest face, 2.5x the next")
    assert photo["box"] == [115.0, 85.0, 265.0, 235.0] and photo["face_size_px"] == 150.0
    (emb,) = FaceEmbedding.objects.all()
    assert list(emb.embedding) == pytest.approx(unit(2).tolist(), abs=1e-6)
    assert len(media_files(media)) == 2  # photo + the crop of the face taken
    assert photo["choose_url"]  # a person may still take the other one


def test_a_central_face_is_enrolled_over_a_similar_one_at_the_edge(owner_client, placed, alice, media):
    faces = [face_at(unit(1), 360, 80, 70), face_at(unit(2), 200, 150, 80)]
    photo = upload(owner_client, alice, placed.register((24, 24, 24), faces))
    assert (photo["status"], photo["chosen_face"]) == ("enrolled", 1)
    assert photo["choice_reason"].startswith("the face nearest the centre")


# ---------------------------------------------------------------- choosing ----------------------------------

def test_choosing_a_face_enrolls_its_stored_embedding_without_the_engine(owner_client, placed, pair_photo, users):
    calls = placed.calls
    response = choose(owner_client, pair_photo["id"], 1)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["reason"], body["chosen_face"]) == ("enrolled", "", 1)
    assert body["choice_reason"] == "chosen by owner"
    assert body["box"] == [220.0, 100.0, 320.0, 200.0] and body["detection_score"] == pytest.approx(0.99)
    (emb,) = FaceEmbedding.objects.all()
    assert (emb.model_name, emb.model_version, emb.person_id) == ("fake", "1", pair_photo["person"])
    assert list(emb.embedding) == pytest.approx(unit(2).tolist(), abs=1e-6)
    assert placed.calls == calls  # no engine
    assert owner_client.get(f"/api/v1/faces/{pair_photo['id']}/").json()["status"] == "enrolled"


def test_a_later_choice_replaces_the_earlier_embedding(owner_client, pair_photo):
    assert choose(owner_client, pair_photo["id"], 1).status_code == 200
    response = choose(owner_client, pair_photo["id"], 0)
    assert response.status_code == 200 and response.json()["chosen_face"] == 0
    (emb,) = FaceEmbedding.objects.all()
    assert list(emb.embedding) == pytest.approx(unit(1).tolist(), abs=1e-6)


def test_choosing_overrides_the_dominant_face_and_drops_its_crop(owner_client, placed, alice, media):
    faces = [face_at(unit(1), 330, 60, 60), face_at(unit(2), 190, 160, 150)]
    photo = upload(owner_client, alice, placed.register((25, 25, 25), faces))
    assert len(media_files(media)) == 2
    body = choose(owner_client, photo["id"], 0).json()
    assert (body["status"], body["chosen_face"], body["choice_reason"]) == ("enrolled", 0, "chosen by owner")
    (emb,) = FaceEmbedding.objects.all()
    assert list(emb.embedding) == pytest.approx(unit(1).tolist(), abs=1e-6)
    assert len(media_files(media)) == 1  # the crop of the other face is gone


@pytest.mark.parametrize("face", [2, -1, 99])
def test_a_bad_index_is_refused(owner_client, pair_photo, face):
    response = choose(owner_client, pair_photo["id"], face)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_face_index" and "0 to 1" in response.json()["detail"]
    assert not FaceEmbedding.objects.exists()


@pytest.mark.parametrize("body", [{}, {"face": "left"}])
def test_a_missing_or_non_numeric_index_is_refused(owner_client, pair_photo, body):
    response = owner_client.post(f"/api/v1/faces/{pair_photo['id']}/choose/", body, format="json")
    assert response.status_code == 400 and response.json()["error"] == "invalid"


def test_an_unusable_face_cannot_be_chosen(owner_client, placed, alice, media):
    faces = [face_at(unit(1), 130, 150, 100), face_at(unit(2), 270, 150, 100), face_at(unit(3), 30, 30, 20)]
    photo = upload(owner_client, alice, placed.register((26, 26, 26), faces))
    assert photo["status"] == "several_faces"
    response = choose(owner_client, photo["id"], 2)
    assert response.status_code == 400 and response.json()["error"] == "face_unusable"
    assert "20 px" in response.json()["detail"]


@pytest.mark.parametrize("faces", [[(1, 200, 150, 120)], []], ids=["one-face", "no-face"])
def test_only_a_photo_with_several_faces_can_have_one_chosen(owner_client, placed, alice, media, faces):
    data = placed.register((27, 27, 27), [face_at(unit(s), x, y, z) for s, x, y, z in faces])
    photo = upload(owner_client, alice, data)
    response = choose(owner_client, photo["id"], 0)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "not_several_faces"
    assert photo["status"] in response.json()["detail"]


def test_a_photo_processed_before_faces_were_kept_must_be_re_embedded_first(owner_client, pair_photo):
    FaceImage.objects.update(candidates=[])
    response = choose(owner_client, pair_photo["id"], 0)
    assert response.status_code == 409 and response.json()["error"] == "faces_outdated"


def test_a_pending_photo_cannot_have_a_face_chosen(owner_client, alice, media):
    from enrollment.faces import create_face_image
    from faceaccess.uploads import validate_image_bytes

    image = create_face_image(alice, validate_image_bytes(image_bytes(), "a.png"), queue=False)
    response = choose(owner_client, image.pk, 0)
    assert response.status_code == 400 and response.json()["error"] == "not_several_faces"


def test_faces_found_by_another_model_must_be_re_embedded_first(owner_client, pair_photo, settings):
    settings.FACEACCESS_EMBEDDER = "next"
    response = choose(owner_client, pair_photo["id"], 0)
    assert response.status_code == 409 and response.json()["error"] == "faces_outdated"


def test_choosing_needs_staff(pair_photo, users):
    from .conftest import token_client

    response = token_client(users.outsider).post(f"/api/v1/faces/{pair_photo['id']}/choose/", {"face": 0})
    assert response.status_code == 403
    assert not FaceEmbedding.objects.exists()


# ---------------------------------------------------------------- re-embedding keeps a choice ---------------

def test_a_persons_choice_survives_re_embedding(owner_client, placed, pair_photo):
    choose(owner_client, pair_photo["id"], 1)
    # The detector now lists the faces the other way round, with a new embedding for each.
    placed.faces_by_color[(20, 20, 20)] = [face_at(unit(8), 272, 151, 98), face_at(unit(7), 130, 150, 100)]
    assert embed_face_image(pair_photo["id"]) == "enrolled"
    image = FaceImage.objects.get()
    assert (image.chosen_face, image.choice_reason, image.chosen_by) == (0, "chosen by owner", "owner")
    (emb,) = FaceEmbedding.objects.all()
    assert list(emb.embedding) == pytest.approx(unit(8).tolist(), abs=1e-6)
    assert image.crop.name  # the worker made the chosen face's crop


def test_another_model_embeds_the_chosen_face(owner_client, placed, pair_photo, monkeypatch):
    hold_pipeline(monkeypatch, PlacedPipeline("next", "2", faces_by_color=placed.faces_by_color))
    choose(owner_client, pair_photo["id"], 1)
    assert reembed_all("next") == {"embedded": 1}
    image = FaceImage.objects.get()
    assert (image.status, image.chosen_face) == ("enrolled", 1)
    by_model = {e.model_name: list(e.embedding) for e in FaceEmbedding.objects.all()}
    assert by_model["next"] == pytest.approx(unit(2).tolist(), abs=1e-6)


# ---------------------------------------------------------------- enroll_dir says how -----------------------

def test_enroll_dir_lists_the_faces_and_says_how_to_choose(site, placed, tmp_path, media):
    from django.core.management import call_command

    (tmp_path / "alice_1.png").write_bytes(placed.register((30, 30, 30), [face_at(v, x, y, s) for v, x, y, s in PAIR]))
    big = [face_at(unit(3), 330, 60, 60), face_at(unit(4), 190, 160, 150)]
    (tmp_path / "bob_1.png").write_bytes(placed.register((31, 31, 31), big))
    out, err = io.StringIO(), io.StringIO()
    call_command("enroll_dir", str(tmp_path), "--site", "HQ", "--sync", stdout=out, stderr=err)
    alice = FaceImage.objects.get(person__name="alice")
    assert "2 images of 2 people: enrolled 1, several_faces 1" in out.getvalue()
    assert (f"alice / alice_1.png: several_faces (image {alice.pk}, 400x300): "
            "face 0: 100 px centred at (130, 150); face 1: 100 px centred at (270, 150)") in err.getvalue()
    assert f"1 photo shows several faces and none dominates (images {alice.pk})" in out.getvalue()
    assert 'POST /api/v1/faces/<image>/choose/ {"face": <index>}' in out.getvalue()
    assert "bob / bob_1.png: enrolled face 1 of 2" in out.getvalue() and "largest face, 2.5x the next" in out.getvalue()
