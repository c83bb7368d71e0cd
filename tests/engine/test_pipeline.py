"""The whole engine on real faces: shapes, batching, and golden distances
(facenet-pytorch style) that catch any silent change in detection,
alignment, preprocessing or weights."""

import numpy as np
import pytest

from recognition.engine import load_image

from .conftest import lfw_image, needs_lfw, needs_weights

pytestmark = [needs_weights, pytest.mark.weights]

PHOTOS = [("Colin_Powell", 1), ("Colin_Powell", 2), ("Serena_Williams", 1), ("Serena_Williams", 2),
          ("Tony_Blair", 1), ("Tony_Blair", 2), ("Gloria_Macapagal_Arroyo", 1), ("Gloria_Macapagal_Arroyo", 2)]

# Distances measured when the pipeline was validated (RetinaFace + 5-point alignment, CPU fp32).
GOLDEN = {
    "sface": [
        [0.0, 0.7579, 1.3134, 1.3361, 1.235, 1.2848, 1.4248, 1.3763],
        [0.7579, 0.0, 1.3552, 1.4259, 1.2741, 1.2724, 1.4292, 1.4187],
        [1.3134, 1.3552, 0.0, 0.7617, 1.2667, 1.3175, 1.3434, 1.3643],
        [1.3361, 1.4259, 0.7617, 0.0, 1.2544, 1.3748, 1.3449, 1.3423],
        [1.235, 1.2741, 1.2667, 1.2544, 0.0, 0.8547, 1.4242, 1.3763],
        [1.2848, 1.2724, 1.3175, 1.3748, 0.8547, 0.0, 1.3781, 1.3336],
        [1.4248, 1.4292, 1.3434, 1.3449, 1.4242, 1.3781, 0.0, 0.764],
        [1.3763, 1.4187, 1.3643, 1.3423, 1.3763, 1.3336, 0.764, 0.0],
    ],
    "facenet-irv1": [
        [0.0, 0.529, 1.278, 1.3543, 1.1629, 1.0229, 1.2852, 1.2872],
        [0.529, 0.0, 1.2822, 1.3654, 1.2226, 1.0748, 1.3295, 1.2986],
        [1.278, 1.2822, 0.0, 0.5774, 1.3851, 1.3127, 1.3373, 1.3957],
        [1.3543, 1.3654, 0.5774, 0.0, 1.4032, 1.3495, 1.4569, 1.5111],
        [1.1629, 1.2226, 1.3851, 1.4032, 0.0, 0.8804, 1.354, 1.2845],
        [1.0229, 1.0748, 1.3127, 1.3495, 0.8804, 0.0, 1.312, 1.3155],
        [1.2852, 1.3295, 1.3373, 1.4569, 1.354, 1.312, 0.0, 0.6557],
        [1.2872, 1.2986, 1.3957, 1.5111, 1.2845, 1.3155, 0.6557, 0.0],
    ],
}


@pytest.fixture(scope="module")
def photos():
    return [load_image(lfw_image(n, i)) for n, i in PHOTOS]


@needs_lfw
@pytest.mark.parametrize("fixture", ["sface_pipeline", "facenet_pipeline"])
def test_golden_distances(fixture, photos, request):
    pipe = request.getfixturevalue(fixture)
    faces = pipe.faces(photos)
    assert all(len(f) >= 1 for f in faces)
    emb = np.stack([f[0].embedding for f in faces])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    dist = np.linalg.norm(emb[:, None] - emb[None], axis=2)
    np.testing.assert_allclose(dist, np.array(GOLDEN[pipe.embedder_name]), atol=0.01)


@needs_lfw
def test_face_fields_and_crops(sface_pipeline, photos):
    (face,) = sface_pipeline.faces(photos[:1], return_crops=True)[0]
    x1, y1, x2, y2 = face.box
    assert 40 < x1 < x2 < 210 and 30 < y1 < y2 < 230 and face.score > 0.9
    assert face.crop.shape == (112, 112, 3) and face.crop.dtype == np.uint8
    lm = face.landmarks
    assert lm[0, 0] < lm[1, 0] and lm[:2, 1].max() < lm[3:, 1].min()  # eyes left/right, above the mouth
    assert face.quality.size_px == pytest.approx(min(x2 - x1, y2 - y1))
    assert face.quality.sharpness > 0 and abs(face.quality.roll) < 20 and abs(face.quality.yaw) < 45


@needs_lfw
def test_batch_of_mixed_sizes_equals_one_by_one(sface_pipeline, photos):
    big = np.zeros((480, 640, 3), np.uint8) + 100
    big[100:350, 200:450] = photos[2]
    images = [photos[0], big]
    batched = sface_pipeline.faces(images)
    for image, faces in zip(images, batched, strict=True):
        (alone,) = sface_pipeline.faces([image])
        assert len(alone) == len(faces) == 1
        np.testing.assert_allclose(alone[0].box, faces[0].box, atol=0.5)
        assert float(alone[0].embedding @ faces[0].embedding) > 0.999
    # The face pasted at (200, 100) is found there.
    assert batched[1][0].box[0] > 200 and batched[1][0].box[1] > 100


def test_no_face_gives_empty_list(sface_pipeline):
    assert sface_pipeline.faces([np.full((240, 320, 3), 80, np.uint8)]) == [[]]
