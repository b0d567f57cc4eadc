"""The Python API, called directly (no subprocess): the README's example, arrays against files, schema upgrades."""

from __future__ import annotations

import dataclasses
import sqlite3

import cv2
import numpy as np
import pytest

import facecli
from facecli.errors import BadValue, GalleryError
from facecli.gallery import open_gallery, schema
from facecli.imageio import jpeg_shrink, read_bytes
from tests.helpers import ROOT

README = ROOT / "README.md"


@pytest.fixture(scope="module")
def engine():
    return facecli.load(device="cpu")


def test_readme_example_runs_on_frames_of_a_video(engine, images, tmp_path, monkeypatch, capsys):
    """The README's API example, run as written, on a video made of two photos (obama2, then biden)."""
    text = README.read_text()
    code = text[text.index("```python\n", text.index("## Python API")) + 10:]
    code = code[:code.index("```")]
    video = tmp_path / "door.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (640, 640))
    for name in ("obama2.jpg", "biden.jpg"):  # each photo scaled into a square frame, its aspect kept
        photo = cv2.imread(str(images / name))
        scale = 640 / max(photo.shape[:2])
        photo = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)))
        frame = np.zeros((640, 640, 3), np.uint8)
        frame[:photo.shape[0], :photo.shape[1]] = photo
        writer.write(frame)
    writer.release()
    with open_gallery(tmp_path / "gallery.db", create=True) as gallery:
        engine.enroll(gallery, [("obama", str(images / "obama.jpg"))])
    monkeypatch.chdir(tmp_path)
    assert "cv2.VideoCapture(0)" in code
    exec(code.replace("cv2.VideoCapture(0)", f"cv2.VideoCapture({str(video)!r})"), {"__name__": "example"})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and " obama " in lines[0] and "not recognized" in lines[1]


def test_an_array_gives_what_its_file_gives(engine, images):
    for name in ("obama.jpg", "obama2.jpg", "obama_partial_face.jpg", "32bit.png"):
        path = images / name
        assert jpeg_shrink(read_bytes(str(path)), engine.pipeline.det_size) == 1  # decoded at full size
        from_file, from_array = engine.faces(path), engine.faces(cv2.imread(str(path)))
        assert len(from_file) == len(from_array) >= 1
        for a, b in zip(from_file, from_array):
            assert a.box == b.box and np.array_equal(a.landmarks, b.landmarks)
            assert np.array_equal(a.embedding, b.embedding)


def test_verify_same_and_different(engine, images):
    same = engine.verify(images / "obama.jpg", images / "obama2.jpg")
    other = engine.verify(str(images / "obama.jpg"), cv2.imread(str(images / "biden.jpg")))
    assert same.same and not other.same and same.tau == other.tau
    assert same.distance < same.tau < other.distance
    with pytest.raises(BadValue) as err:
        engine.verify(images / "obama.jpg", images / "obama2.jpg", tau=5)
    assert (err.value.setting, err.value.value) == ("tau", 5)


def test_a_bad_array_is_an_input_error_not_a_crash(engine):
    with pytest.raises(facecli.FaceCliError, match="uint8"):
        engine.faces(np.zeros((10, 10, 3), np.float32))


def test_gallery_identify_and_claims(engine, images, tmp_path):
    path = tmp_path / "g.db"
    with open_gallery(path, create=True) as gallery:
        engine.enroll(gallery, [("obama", str(images / "obama.jpg")), ("biden", str(images / "biden.jpg"))])
    with open_gallery(path) as gallery:
        (d,) = engine.identify_faces(gallery, engine.faces(images / "obama3.jpg"), top_k=2)
        assert d.name == "obama" and [c.name for c in d.candidates] == ["obama", "biden"]
        assert d.threshold.gallery_size == 2 and d.threshold.fpir == 0.01
        v = engine.verify_claim(gallery, images / "obama2.jpg", "obama")
        assert v.same and v.claim == "obama"
        with pytest.raises(BadValue, match="no such person"):
            engine.verify_claim(gallery, images / "obama2.jpg", "nobody")
    with pytest.raises(GalleryError, match="built with model fusion"):
        open_gallery(path, "facenet")


def _v1_gallery(path, embeddings: dict[str, np.ndarray]) -> None:
    """A gallery file as facecli 0.1 (schema 1) wrote it, holding these people."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for statement in schema.statements(schema.STEPS[0], "sqlite", 640):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [("model", "fusion"), ("dim", "640"), ("created", "0")])
    for i, (name, emb) in enumerate(embeddings.items(), 1):
        conn.execute("INSERT INTO persons VALUES (?, ?, 0)", (i, name))
        conn.execute("INSERT INTO templates (person_id, model, embedding, source, sha256, box, created) "
                     "VALUES (?, 'fusion', ?, ?, ?, '[0, 0, 1, 1]', 0)",
                     (i, emb.astype("<f4").tobytes(), f"{name}.jpg", f"{i:064x}"))
    conn.execute(f"PRAGMA application_id = {0x46434C49}")
    conn.execute("COMMIT")
    conn.close()


def test_a_v1_gallery_is_read_as_is_and_upgraded_in_one_transaction_on_write(engine, images, tmp_path,
                                                                              monkeypatch):
    path = tmp_path / "v1.db"
    people = {n: engine.faces(images / f"{n}.jpg")[0].embedding for n in ("obama", "biden")}
    _v1_gallery(path, people)
    with open_gallery(path) as g:  # reading needs no upgrade, and does none
        assert g.schema == 1 and [p.name for p in g.persons()] == ["biden", "obama"]
        assert engine.identify_faces(g, engine.faces(images / "obama2.jpg"))[0].name == "obama"

    broken = tmp_path / "broken.db"
    _v1_gallery(broken, people)
    # a step that fails after its first statements ran: nothing of it, nor of the enroll, may stay
    step = schema.STEPS[1]
    broken_step = dataclasses.replace(step, sqlite=step.sqlite + "; SELECT * FROM no_such_table")
    monkeypatch.setattr(schema, "STEPS", [schema.STEPS[0], broken_step])
    with open_gallery(broken, write=True) as g, pytest.raises(GalleryError, match="no such table"):
        engine.enroll(g, [("obama", str(images / "obama2.jpg"))])
    monkeypatch.undo()
    with sqlite3.connect(broken) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM templates").fetchone()[0] == 2
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'schema_history'").fetchone()[0] == 0

    with open_gallery(path, write=True) as g:
        results = engine.enroll(g, [("obama", str(images / "obama2.jpg"))])
    assert [r.status for r in results] == ["added"]
    with open_gallery(path) as g:
        assert g.schema == schema.SCHEMA_VERSION
        assert [(p.name, p.templates) for p in g.persons()] == [("biden", 1), ("obama", 2)]
        assert g.check() == []
    with sqlite3.connect(path) as conn:
        history = [v for (v,) in conn.execute("SELECT version FROM schema_history")]
    assert history == list(range(2, schema.SCHEMA_VERSION + 1))
