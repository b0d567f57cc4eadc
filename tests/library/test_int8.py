"""The default model's fast paths give the float model's answers: int8 FaceNet, SFace's PRelu, the mirror in one run."""

from __future__ import annotations

import numpy as np
import pytest

from facecli.embedding import Embedder
from facecli.models import source_path
from facecli.pipeline import Pipeline

PHOTOS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg"]


@pytest.fixture(scope="module")
def crops(images) -> dict[str, np.ndarray]:
    """Each photo's face as the default pipeline crops it for FaceNet (box) and SFace (five points)."""
    pipe = Pipeline(device="cpu", embed=False)
    pipe._croppers = pipe.embedder.parts  # both crops, without loading the embedders
    faces = [r.faces[0] for r in pipe.run([str(images / n) for n in PHOTOS])]
    return {"facenet": np.stack([f.crops[0] for f in faces]), "sface": np.stack([f.crops[1] for f in faces])}


def test_int8_facenet_embeds_the_photos_as_the_float_model_does(crops):
    float32 = Embedder("facenet", "cpu").embed(crops["facenet"])
    int8 = Embedder("facenet-int8", "cpu").embed(crops["facenet"])
    cosine = np.sum(float32 * int8, axis=1)
    assert cosine.min() >= 0.995, cosine
    # and it orders the pairs as the float model does: obama's photos closer to each other than to biden
    d32, d8 = (2 - 2 * e @ e.T for e in (float32, int8))
    assert np.abs(d32 - d8).max() < 0.05
    biden = PHOTOS.index("biden.jpg")
    for d in (d32, d8):
        same = np.delete(np.delete(d, biden, 0), biden, 1)
        assert same.max() < np.delete(d[biden], biden).min()


def test_sface_with_rewritten_prelu_is_the_original_graph(crops, tmp_path):
    """The built SFace (PRelu as a*x + (1-a)*Relu(x)) against the same weights with PRelu, both on onnxruntime."""
    pytest.importorskip("onnx")
    import onnxruntime as ort

    from facecli.modelbuild.dequantize_onnx import dequantize

    original = tmp_path / "sface-prelu.onnx"
    dequantize(str(source_path("sface")), str(original), [0], [0])
    session = ort.InferenceSession(str(original), providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(crops["sface"].astype(np.float32).transpose(0, 3, 1, 2))
    reference = np.concatenate([session.run(None, {"data": x[i:i + 1]})[0] for i in range(len(x))])
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    ours = Embedder("sface", "cpu").embed(crops["sface"])
    assert np.abs(ours - reference).max() < 1e-5


def test_the_mirror_image_in_the_same_run_is_the_sum_of_two_runs(crops):
    sface = Embedder("sface", "cpu", flip=True)
    x = crops["sface"]
    expected = sface._run(x) + sface._run(np.ascontiguousarray(x[:, :, ::-1]))
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.abs(sface.embed(x) - expected).max() < 1e-5
