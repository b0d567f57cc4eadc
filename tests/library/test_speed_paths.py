"""The fast paths must not change answers: streaming, workers, layouts, reduced decoding."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facecli.alignment import crop_face
from facecli.imageio import read_image
from facecli.pipeline import Pipeline

PHOTOS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama_partial_face.jpg", "32bit.png"]


def _by_file(results) -> dict:
    return {Path(r.path).name: r for r in results}


def test_a_stream_of_images_gives_what_each_image_gives_alone(pipeline, images):
    """Decoding in threads and embedding faces of many images in one batch changes nothing."""
    paths = [str(images / n) for n in PHOTOS] * 2
    streamed = list(pipeline.run(paths))
    assert [r.path for r in streamed] == paths  # input order, duplicates included
    alone = {n: next(iter(pipeline.run([str(images / n)]))) for n in PHOTOS}
    for res in streamed:
        ref = alone[Path(res.path).name]
        assert len(res.faces) == len(ref.faces) >= 1
        for a, b in zip(res.faces, ref.faces):
            assert a.detection.box == b.detection.box
            assert np.abs(a.embedding - b.embedding).max() < 1e-5


def test_one_worker_and_several_workers_agree(images):
    paths = [str(images / n) for n in PHOTOS]
    one = _by_file(Pipeline(device="cpu", workers=1).run(paths))
    many = _by_file(Pipeline(device="cpu", workers=3, batch_size=2).run(paths))
    for name in PHOTOS:
        assert np.abs(one[name].faces[0].embedding - many[name].faces[0].embedding).max() < 1e-5


def test_both_layouts_give_the_same_embeddings(images):
    """Workers embedding their own chunks on one thread per network (the CPU's layout) and this thread
    embedding batches with the cores (a GPU's, run here on the CPU) give the same answers, in input order."""
    paths = [str(images / n) for n in PHOTOS] * 3
    chunks = Pipeline(device="cpu", workers=2)
    batches = Pipeline(device="cpu", in_workers=False, threads=0)
    assert chunks.in_workers and not batches.in_workers
    a, b = list(chunks.run(paths)), list(batches.run(paths))
    assert [r.path for r in a] == [r.path for r in b] == paths
    for x, y in zip(a, b):
        assert [f.detection.box for f in x.faces] == [f.detection.box for f in y.faces]
        for f, g in zip(x.faces, y.faces):
            assert np.abs(f.embedding - g.embedding).max() < 1e-5
    # the CPU layout's groups are chunks of 1, then 2, then up to CHUNK images, each embedded by its worker
    sizes = [len(group) for group in Pipeline(device="cpu", workers=2).batches(paths)]
    assert sum(sizes) == len(paths) and sizes[:2] == [1, 1] and max(sizes) <= Pipeline.CHUNK


def test_reduced_jpeg_decoding_finds_the_same_face_in_photo_pixels(pipeline, images):
    """obama3.jpg (2333 px) is decoded at 1/2 scale; boxes still come out in the photo's own pixels."""
    path = str(images / "obama3.jpg")
    full = read_image(path)
    (res,) = pipeline.run([path])
    exact = Pipeline(model="facenet", device="cpu", det_size=0)  # no reduced decode; detection at 2048 px
    (ref,) = exact.run([path])
    a, b = np.array(res.faces[0].detection.box), np.array(ref.faces[0].detection.box)
    inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
    union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
    assert inter / union > 0.85
    assert a[2] <= full.shape[1] and a[3] <= full.shape[0]
    # the face is large: its crop comes from the reduced image and embeds like the full-resolution one
    assert float(np.sum((res.faces[0].embedding - ref.faces[0].embedding) ** 2)) < 0.05


def test_a_face_too_small_at_reduced_scale_is_cropped_from_full_resolution(pipeline, images, tmp_path):
    """A 2600-px photo decodes at 1/4; its ~130-px face would be ~33 px there, so it is cropped at full size."""
    face = cv2.imread(str(images / "obama.jpg"))
    canvas = np.full((1700, 2600, 3), 180, np.uint8)
    small = cv2.resize(face, (face.shape[1] // 2, face.shape[0] // 2), interpolation=cv2.INTER_AREA)
    canvas[600:600 + small.shape[0], 1100:1100 + small.shape[1]] = small
    path = tmp_path / "wide.jpg"
    cv2.imwrite(str(path), canvas, [cv2.IMWRITE_JPEG_QUALITY, 95])
    (res,) = pipeline.run([str(path)])
    assert len(res.faces) == 1
    det = res.faces[0].detection
    assert 1100 < det.box[0] < det.box[2] < 1100 + small.shape[1]
    assert det.width < 4 * 160  # would be under 160 px at the 1/4 scale it was detected at
    expected = crop_face(read_image(str(path)), det, (160, 160), 32)
    assert np.array_equal(res.faces[0].crop, expected)
