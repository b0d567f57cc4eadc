"""The fast paths must not change answers: streaming, reduced decoding, caches, the search index."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import json_rows

from facecli.alignment import crop_face
from facecli.imageio import read_bytes, read_image
from facecli.pipeline import Pipeline
from facecli.search import TemplateIndex

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


def test_jpeg_shrink_only_for_large_jpegs(images):
    from facecli.imageio import jpeg_shrink

    assert jpeg_shrink(read_bytes(str(images / "obama3.jpg")), 640) == 2  # 2333 px long
    assert jpeg_shrink(read_bytes(str(images / "obama.jpg")), 640) == 1  # 1137 px
    assert jpeg_shrink(read_bytes(str(images / "32bit.png")), 100) == 1  # not a JPEG


# -- caches on the cold path ------------------------------------------------------------
def _private_models(tmp_path: Path) -> Path:
    """A models folder with its own copy of one small model, so it can be edited."""
    from facecli.models import manifest

    folder = tmp_path / "models"
    folder.mkdir()
    for spec in manifest().values():
        if spec.name == "mtcnn-onet":
            (folder / spec.file).write_bytes(spec.path.read_bytes())
        else:
            (folder / spec.file).symlink_to(spec.path)
    return folder


def test_a_model_edited_after_its_check_is_hashed_again_and_refused(run, tmp_path, images):
    """The remembered sha256 check keys on size, times and inode: an in-place edit that
    restores the size and the modification time is still caught (the change time moves)."""
    folder = _private_models(tmp_path)
    env = {"FACECLI_MODELS": str(folder), "FACECLI_CACHE": str(tmp_path / "cache")}
    assert run("detect", str(images / "obama.jpg"), "--detector", "mtcnn", env=env).returncode == 0
    stamps = json.loads((tmp_path / "cache" / "verified-models.json").read_text())
    assert str((folder / "mtcnn-onet.onnx").resolve()) in stamps
    target = folder / "mtcnn-onet.onnx"
    st = target.stat()
    with open(target, "r+b") as fh:
        fh.seek(st.st_size // 2)
        byte = fh.read(1)
        fh.seek(st.st_size // 2)
        fh.write(bytes([byte[0] ^ 1]))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_size == st.st_size and target.stat().st_mtime_ns == st.st_mtime_ns
    proc = run("detect", str(images / "obama.jpg"), "--detector", "mtcnn", env=env)
    assert proc.returncode == 2 and "mtcnn-onet" in proc.stderr and "sha256" in proc.stderr


def test_the_cached_optimised_graph_gives_the_same_embeddings(run, tmp_path, images):
    cache = tmp_path / "cache"
    env = {"FACECLI_CACHE": str(cache)}
    args = ("embed", str(images / "obama.jpg"), "--json")
    first = run(*args, env=env)  # optimises the graphs (YuNet, FaceNet, SFace) and writes the copies
    optimised = max((cache / "ort-optimised").glob("*.onnx"), key=lambda p: p.stat().st_size)  # FaceNet's
    second = run(*args, env=env)  # loads the copy
    optimised.write_bytes(optimised.read_bytes()[:1000])  # damaged: must be noticed and rewritten
    third = run(*args, env=env)
    vectors = [np.array(json_rows(p.stdout)[0]["embedding"]) for p in (first, second, third)]
    assert all(p.returncode == 0 for p in (first, second, third)), third.stderr
    assert np.abs(vectors[0] - vectors[1]).max() < 1e-5 and np.abs(vectors[0] - vectors[2]).max() < 1e-5
    assert optimised.stat().st_size > 1_000_000


# -- the search index ---------------------------------------------------------------------
def _identify(run, images, search: str) -> list[tuple]:
    proc = run("identify", *(str(images / n) for n in PHOTOS), "--json", "--top-k", "3", "--search", search)
    assert proc.returncode == 0, proc.stderr
    return [(r["file"], r["face"], r["name"], r["distance"], [c["name"] for c in r["candidates"]])
            for r in json_rows(proc.stdout)]


@pytest.fixture
def three_people(run, images, tmp_path):
    side = tmp_path / "people"
    side.mkdir()
    for name, photo in [("obama", "obama.jpg"), ("biden", "biden.jpg"), ("obama", "obama3.jpg")]:
        proc = run("enroll", name, str(images / photo))
        assert proc.returncode == 0, proc.stderr
    flipped = side / "mirror.jpg"  # a third "person": biden mirrored, so near biden, not equal
    cv2.imwrite(str(flipped), cv2.flip(cv2.imread(str(images / "biden.jpg")), 1))
    assert run("enroll", "mirror-biden", str(flipped)).returncode == 0
    return run


def test_index_search_answers_as_exact_search(three_people, images):
    run = three_people
    exact = _identify(run, images, "exact")
    assert _identify(run, images, "index") == exact
    index_path, meta_path = TemplateIndex.paths(run.gallery)
    assert index_path.exists() and oct(index_path.stat().st_mode & 0o777) == "0o600"
    assert json.loads(meta_path.read_text())["count"] == 4


def test_index_follows_enrolments_and_removals(three_people, images):
    run = three_people
    index_path, meta_path = TemplateIndex.paths(run.gallery)
    _identify(run, images, "index")
    assert run("enroll", "biden", str(images / "obama2.jpg")).returncode == 0  # a wrong label, on purpose
    got = _identify(run, images, "index")
    assert got == _identify(run, images, "exact")
    assert json.loads(meta_path.read_text())["count"] == 5
    assert run("gallery", "remove", "mirror-biden").returncode == 0
    got = _identify(run, images, "index")
    assert got == _identify(run, images, "exact")
    assert all("mirror-biden" not in row[4] for row in got)
    meta = json.loads(meta_path.read_text())
    assert meta["count"] == 4 and meta["removals"] == 1


def test_a_damaged_index_is_rebuilt_not_trusted(three_people, images):
    run = three_people
    exact = _identify(run, images, "exact")
    _identify(run, images, "index")
    index_path, _ = TemplateIndex.paths(run.gallery)
    index_path.write_bytes(b"\0" * 64)
    assert _identify(run, images, "index") == exact
    assert index_path.stat().st_size > 64


def test_cli_choices_and_defaults_are_the_libraries(run):
    """The CLI declares no constant of its own: --help shows the library's choices and defaults."""
    from facecli.detectors import DET_SIZE, DETECTORS
    from facecli.modes import SEARCH_MODES, TEMPLATE_MODES
    from facecli.runtime import DEVICES

    text = " ".join(run("identify", "--help", env={"COLUMNS": "400"}).stdout.split())
    for values in (DETECTORS, SEARCH_MODES, TEMPLATE_MODES, DEVICES):
        assert "<" + "|".join(values) + ">" in text
    assert f"[default: {DET_SIZE}]" in text
    bad = run("identify", "x.jpg", "--detector", "retina")
    assert bad.returncode == 2 and all(d in bad.stderr for d in DETECTORS)
