"""The speed paths through the command: the model and optimised-graph caches on the cold path, the
template index, and the CLI's choices and defaults taken from the libraries.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from facecli.gallery.fileindex import TemplateIndex
from tests.helpers import json_rows

PHOTOS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama_partial_face.jpg", "32bit.png"]


# -- caches on the cold path ------------------------------------------------------------
def _private_models(tmp_path: Path) -> Path:
    """A models folder with its own copy of one small model, so it can be edited."""
    from facecli.models import manifest

    folder = tmp_path / "models"
    folder.mkdir()
    for spec in manifest().values():
        if spec.name == "yunet":
            (folder / spec.file).write_bytes(spec.path.read_bytes())
        else:
            (folder / spec.file).symlink_to(spec.path)
    return folder


def test_a_model_edited_after_its_check_is_hashed_again_and_refused(run, tmp_path, images):
    """The remembered sha256 check keys on size, times and inode: an in-place edit that
    restores the size and the modification time is still caught (the change time moves). (A model that is
    loaded is hashed as it is read; the stamp vouches for YuNet's file while its optimised copy is loaded.)"""
    folder = _private_models(tmp_path)
    env = {"FACECLI_MODELS": str(folder), "FACECLI_CACHE": str(tmp_path / "cache")}
    for _ in range(2):  # the first run optimises YuNet's graph, the second loads that copy and stamps the file
        assert run("detect", str(images / "obama.jpg"), env=env).returncode == 0
    stamps = json.loads((tmp_path / "cache" / "verified-models.json").read_text())
    assert str((folder / "yunet-2023mar.onnx").resolve()) in stamps
    target = folder / "yunet-2023mar.onnx"
    st = target.stat()
    with open(target, "r+b") as fh:
        fh.seek(st.st_size // 2)
        byte = fh.read(1)
        fh.seek(st.st_size // 2)
        fh.write(bytes([byte[0] ^ 1]))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_size == st.st_size and target.stat().st_mtime_ns == st.st_mtime_ns
    proc = run("detect", str(images / "obama.jpg"), env=env)
    assert proc.returncode == 2 and "yunet" in proc.stderr and "sha256" in proc.stderr


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
