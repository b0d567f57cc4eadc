"""One API shape (issue 23, item 4): one image on the calling thread, an explicit colour order, inputs that
cannot be images refused in one line, Faces given to verify, ``facecli.distance``, ``Engine.watch``, short
reprs and the exports. Real models, real photos."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

import facecli
from facecli.errors import InputError
from facecli.values import Candidate, EnrollResult, Template
from tests.helpers import FACECLI, door_clip, json_rows

PHOTOS = ("obama.jpg", "obama2.jpg", "biden.jpg", "obama_partial_face.jpg", "32bit.png")


@pytest.fixture(scope="module")
def engine():
    return facecli.load(device="cpu")


def _started_threads(call) -> list[str]:
    """The names of the threads started while ``call`` runs (every thread that threading starts is traced)."""
    names: list[str] = []

    def trace(*_args):
        names.append(threading.current_thread().name)

    threading.settrace(trace)
    try:
        call()
    finally:
        threading.settrace(None)
    return names


def _same_faces(a: list[facecli.Face], b: list[facecli.Face]) -> bool:
    return len(a) == len(b) >= 1 and all(
        x.box == y.box and np.array_equal(x.landmarks, y.landmarks) and np.array_equal(x.embedding, y.embedding)
        for x, y in zip(a, b))


# -- one image, on the calling thread ----------------------------------------------------------------


def test_one_image_is_handled_on_the_calling_thread_with_what_run_gives(engine, images):
    frame = cv2.imread(str(images / "obama.jpg"))
    assert _started_threads(lambda: engine.faces(frame)) == []
    assert _started_threads(lambda: engine.analyse(images / "biden.jpg")) == []
    assert _started_threads(lambda: list(engine.run([frame]))) != []  # a stream has its reader and workers
    for name in PHOTOS:
        path = images / name
        for image in (path, str(path), cv2.imread(str(path), cv2.IMREAD_UNCHANGED)):
            (streamed,) = engine.run([image])
            assert _same_faces(engine.faces(image), streamed.faces), name
            alone = engine.analyse(image)
            assert _same_faces(alone.faces, streamed.faces) and alone.sha256 == streamed.sha256 is not None
    # a file and its pixels give the same faces (decoded at full size: these photos are small)
    assert _same_faces(engine.faces(images / "obama.jpg"), engine.faces(frame))


def test_an_unreadable_image_raises_from_faces_and_is_the_result_of_analyse(engine, tmp_path):
    missing = tmp_path / "missing.jpg"
    with pytest.raises(InputError, match="missing.jpg"):
        engine.faces(missing)
    assert isinstance(engine.analyse(missing).error, InputError)


# -- the colour order ----------------------------------------------------------------------------------


def test_rgb_arrays_give_what_bgr_arrays_give_once_said(engine, images):
    bgr = cv2.imread(str(images / "obama2.jpg"))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    expected = engine.faces(bgr)
    assert _same_faces(engine.faces(rgb, rgb=True), expected)
    assert _same_faces(engine.faces(bgr[..., ::-1], rgb=True), expected)  # a reversed view, as numpy gives it
    assert engine.analyse(rgb, rgb=True).sha256 == engine.analyse(bgr).sha256  # one photo, one identity
    (streamed,) = engine.run([rgb], rgb=True)
    assert _same_faces(streamed.faces, expected)
    rgba = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA)
    assert _same_faces(engine.faces(rgba, rgb=True), engine.faces(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)))
    # unsaid, an RGB array is taken for BGR: the faces are found, their embeddings are off (why rgb= exists)
    (wrong,) = engine.faces(rgb)
    assert not np.array_equal(wrong.embedding, expected[0].embedding)
    assert engine.verify(rgb, bgr, rgb=False).distance > engine.verify(rgb, images / "obama2.jpg", rgb=True).distance


def test_an_engine_loaded_for_rgb_takes_rgb_everywhere(engine, images):
    bgr = cv2.imread(str(images / "biden.jpg"))
    rgb_engine = facecli.load(device="cpu", rgb=True)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    assert _same_faces(rgb_engine.faces(rgb), engine.faces(bgr))
    (streamed,) = rgb_engine.run([rgb])
    assert _same_faces(streamed.faces, engine.faces(bgr))
    assert _same_faces(rgb_engine.faces(bgr, rgb=False), engine.faces(bgr))  # a call says otherwise


# -- what cannot be an image ---------------------------------------------------------------------------


@pytest.mark.parametrize("pixels, words", [
    (np.zeros((480, 640, 3), np.float32), ("<array>", "uint8", "float32", "astype")),
    (np.zeros((480, 640, 3), np.float64) + 0.5, ("<array>", "uint8", "float64")),
    (np.zeros((480, 640, 3), np.uint16), ("<array>", "uint8", "uint16")),
    (np.zeros((480, 640, 2), np.uint8), ("<array>", "HxWx3", "(480, 640, 2)")),
    (np.zeros((3, 480, 640), np.uint8), ("<array>", "HxWx3", "(3, 480, 640)")),
    (np.zeros(640, np.uint8), ("<array>", "HxWx3", "(640,)")),
    (np.zeros((0, 640, 3), np.uint8), ("<array>", "empty")),
])
def test_an_array_that_is_no_8_bit_image_is_refused_in_one_line(engine, pixels, words):
    with pytest.raises(InputError) as err:
        engine.faces(pixels)
    line = str(err.value)
    assert "\n" not in line and all(w in line for w in words), line
    assert str(engine.analyse(pixels).error) == line


def test_a_pil_image_or_another_object_is_refused_in_one_line_naming_it(engine, images):
    from PIL import Image

    with Image.open(images / "obama.jpg") as pil:
        for call in (lambda: engine.faces(pil), lambda: engine.verify(pil, images / "obama.jpg")):
            with pytest.raises(InputError) as err:
                call()
            assert "\n" not in str(err.value) and str(err.value).startswith("<PIL.")
            assert "np.asarray(image) with rgb=True" in str(err.value)
        # what it says to do works
        assert _same_faces(engine.faces(np.asarray(pil), rgb=True), engine.faces(images / "obama.jpg"))
        # in a stream it is that input's error; the others go on
        results = list(engine.run([images / "biden.jpg", pil, images / "obama.jpg"]))
    assert [r.error is None for r in results] == [True, False, True] and isinstance(results[1].error, InputError)
    with pytest.raises(InputError, match="<builtins.bytes>: not an image"):
        engine.faces((images / "obama.jpg").read_bytes())


# -- verify with Faces, and facecli.distance --------------------------------------------------------------


def test_verify_takes_faces_as_they_are(engine, images):
    (a,) = engine.faces(images / "obama.jpg")
    (b,) = engine.faces(images / "obama2.jpg")
    (c,) = engine.faces(images / "biden.jpg")
    photos = engine.verify(images / "obama.jpg", images / "obama2.jpg")
    assert engine.verify(a, b).distance == engine.verify(a, images / "obama2.jpg").distance == photos.distance
    assert engine.verify(images / "obama.jpg", b).distance == photos.distance
    itself = engine.verify(a, a)
    assert itself.same and itself.distance == pytest.approx(0, abs=1e-5) and itself.probe_face is a
    assert not engine.verify(a, c).same
    assert _started_threads(lambda: engine.verify(a, b)) == []


def test_verify_refuses_a_face_this_engine_could_not_have_embedded(engine, pipeline, images):
    (face,) = engine.faces(images / "obama.jpg")
    (facenet,) = pipeline.one(str(images / "obama.jpg")).faces  # FaceNet alone: 512-d, fusion is 640-d
    with pytest.raises(InputError, match="model fusion embeds 640-d"):
        engine.verify(facenet, face)
    (bare,) = facecli.load(device="cpu", embed=False).faces(images / "obama.jpg")
    with pytest.raises(InputError, match="has no embedding"):
        engine.verify(face, bare)


def test_distance_is_what_verify_compares(engine, images):
    faces = {n: engine.faces(images / n)[0] for n in ("obama.jpg", "obama2.jpg", "biden.jpg")}
    a, b, c = faces.values()
    v = engine.verify(images / "obama.jpg", images / "obama2.jpg")
    assert isinstance(facecli.distance(a, b), float)
    assert facecli.distance(a, b) == pytest.approx(v.distance, abs=1e-5)
    assert facecli.distance(a.embedding, b.embedding) == pytest.approx(v.distance, abs=1e-5)
    one_to_many = facecli.distance(a, [a, b, c])
    assert one_to_many.shape == (3,) and one_to_many[0] == pytest.approx(0, abs=1e-5)
    assert np.allclose(one_to_many, facecli.distance(np.stack([a.embedding, b.embedding, c.embedding]), a))
    many = facecli.distance([a, b], [a, b, c])
    assert many.shape == (2, 3) and np.allclose(many[0], one_to_many, atol=1e-6)
    assert np.allclose(many, (2 - 2 * np.stack([a.embedding, b.embedding]) @ np.stack(
        [a.embedding, b.embedding, c.embedding]).T).clip(0), atol=1e-5)
    assert facecli.distance(a, []).shape == (0,)
    with pytest.raises(facecli.FaceCliError, match="different sizes"):
        facecli.distance(a, a.embedding[:512])


def test_distance_goes_through_the_faces_projection_head(images, tmp_path):
    from tests.helpers import heads

    head = heads.write_head(tmp_path)
    tuned = facecli.load(device="cpu", head=head)
    a, b = (tuned.faces(images / n)[0] for n in ("obama.jpg", "biden.jpg"))
    v = tuned.verify(a, b)
    assert facecli.distance(a, b) == pytest.approx(v.distance, abs=1e-5)
    assert facecli.distance(a, b.embedding) == pytest.approx(v.distance, abs=1e-5)  # a base embedding: headed too
    assert facecli.distance(a.embedding, b.embedding) != pytest.approx(v.distance, abs=1e-3)  # arrays alone: not
    assert "head='head.onnx'" in repr(a)
    plain = facecli.load("sface", device="cpu").faces(images / "obama.jpg")[0]
    with pytest.raises(facecli.FaceCliError, match="different projection heads"):
        facecli.distance(a, plain)
    with pytest.raises(InputError, match="without a head; this engine uses the head"):
        tuned.verify(plain, a)


# -- reprs -------------------------------------------------------------------------------------------------


def _short(value: object, *words: str) -> str:
    text = repr(value)
    assert len(text) < 300 and "array(" not in text and "\n" not in text, text
    assert all(w in text for w in words), text
    return text


def test_values_print_what_matters_in_a_line(engine, images, tmp_path):
    v = engine.verify(images / "obama.jpg", images / "obama2.jpg")
    _short(v, "decision='same'", f"distance={v.distance:.4f}", "tau=", "obama2.jpg")
    assert str(v) == repr(v)
    face = v.probe_face
    _short(face, "box=(", "score=", "embedding=<640-d>")
    _short(face.detection, "box=(", "score=")
    _short(engine.analyse(images / "obama.jpg"), "obama.jpg", "faces=<1 face>", "sha256=")
    _short(engine.analyse(tmp_path / "missing.jpg"), "error=InputError(")
    template = Template(face.embedding, "obama.jpg", v.probe.sha256, face.box)
    _short(template, "embedding=<640-d>", "obama.jpg")
    _short(EnrollResult("obama", "obama.jpg", "added", template=template), "name='obama'", "status='added'")
    results, clustered, threshold = engine.cluster([images / "obama.jpg", images / "biden.jpg"])
    _short(clustered[0], "cluster=", "embedding=<640-d>")
    _short(threshold, "tau=")
    _short(Candidate("obama", 0.41234567), "Candidate(name='obama', distance=0.4123)")
    top = facecli.Decision(None, 1.9, [Candidate(f"person{i}", 1.9 + i / 10) for i in range(10)], threshold)
    assert _short(top, "name=None", "person2", ", ...]").count("Candidate(") == 3  # the nearest three


def test_gallery_and_watch_values_print_in_a_line(engine, images, clip_gallery, clip):
    with facecli.open_gallery(clip_gallery) as gallery:
        (d,) = engine.identify_faces(gallery, engine.faces(images / "obama3.jpg"), top_k=5)
        _short(d, "name='obama'", "candidates=[Candidate(name='obama',", "tau=")
        _short(d.threshold, "tau=", "gallery_size=2", "fpir=")
        for person in gallery.persons():
            _short(person, person.name)
        frames = list(engine.watch(gallery, str(clip), step=5))
    _short(frames[0], "Frame(index=0", "faces=<1>", "names=['obama']", "Event(kind='appear', track=1, name='obama'")
    _short(frames[0].events[0].track, "Track(id=1", "name='obama'")


# -- Engine.watch ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(images, tmp_path_factory) -> Path:
    """A 4.5 s, 10 fps video built from the photos: Obama 1.5 s, nobody 1.5 s, Biden 1.5 s."""
    return door_clip(images, tmp_path_factory.mktemp("video") / "door.avi")


@pytest.fixture(scope="module")
def clip_gallery(images, tmp_path_factory) -> Path:
    """Obama (obama.jpg, not the photo in the clip) and Biden, enrolled by the command."""
    path = tmp_path_factory.mktemp("gallery") / "g.db"
    for name, photo in (("obama", "obama.jpg"), ("biden", "biden.jpg")):
        proc = subprocess.run([FACECLI, "enroll", name, str(images / photo), "--gallery", str(path), "-q"],
                              capture_output=True, text=True, env=dict(os.environ, FACECLI_DEVICE="cpu"))
        assert proc.returncode == 0, proc.stderr
    return path


def _events(frames: list) -> list[tuple]:
    return [(e.kind, e.track.id, e.track.name, f.index, round(e.time, 6)) for f in frames for e in f.events]


def test_watch_is_an_engine_verb_with_the_events_of_the_command(engine, clip, clip_gallery):
    with facecli.open_gallery(clip_gallery) as gallery:
        frames = list(engine.watch(gallery, str(clip), step=2))
        again = list(engine.watch(gallery, facecli.Video(str(clip)), step=2))  # a video opened already
    assert [(f.index, f.time) for f in frames[:3]] == [(0, 0.0), (2, 0.2), (4, 0.4)]
    assert len(frames) == 23 + 1 and frames[-1].image is None  # 45 frames, every other one, then the end
    assert all(f.image.shape == (480, 640, 3) for f in frames[:-1])
    events = _events(frames)
    assert [(kind, track, name) for kind, track, name, _, _ in events] == [
        ("appear", 1, "obama"), ("leave", 1, "obama"), ("appear", 2, "biden"), ("leave", 2, "biden")]
    assert _events(again) == events
    proc = subprocess.run([FACECLI, "watch", "--video", str(clip), "--gallery", str(clip_gallery), "--every", "2",
                           "--json"], capture_output=True, text=True,
                          env=dict(os.environ, FACECLI_DEVICE="cpu"))
    assert proc.returncode == 0, proc.stderr
    rows = json_rows(proc.stdout)
    assert [(r["event"], r["track"], r["name"], r["frame"]) for r in rows] == [e[:4] for e in events]
    assert [r["time"] for r in rows] == pytest.approx([e[4] for e in events], abs=1e-3)


def test_watch_stops_when_asked_and_every_face_leaves(engine, clip, clip_gallery):
    stop = threading.Event()
    seen = []
    with facecli.open_gallery(clip_gallery) as gallery:
        for frame in engine.watch(gallery, str(clip), step=2, stop=stop):
            seen.append(frame)
            if frame.index == 4:
                stop.set()
    assert [f.index for f in seen] == [0, 2, 4, 4] and seen[-1].image is None
    assert [(e.kind, e.track.name) for e in seen[-1].events] == [("leave", "obama")]


def test_watch_refuses_what_is_not_a_video_in_one_line(engine, images, clip_gallery):
    with facecli.open_gallery(clip_gallery) as gallery, pytest.raises(InputError) as err:
        next(engine.watch(gallery, str(images / "obama.jpg")))
    assert "not a video" in str(err.value) and "\n" not in str(err.value)


# -- the exports ---------------------------------------------------------------------------------------------


def test_the_api_is_listed_and_imported_lazily():
    names = {"load", "Engine", "open_gallery", "Gallery", "distance", "Face", "Detection", "ImageResult", "Decision",
             "Verification", "Candidate", "Threshold", "Template", "PersonInfo", "Match", "EnrollResult",
             "ClusteredFace", "Frame", "Video", "Event", "FaceCliError", "InputError", "__version__"}
    assert names <= set(facecli.__all__) <= set(dir(facecli))
    assert sorted(facecli.__all__) == sorted([*facecli._MODULE_OF, "__version__"])
    for name in facecli.__all__:
        assert getattr(facecli, name) is not None
    with pytest.raises(AttributeError):
        facecli.nothing_such  # noqa: B018
    # the value types cost no numpy, OpenCV or onnxruntime: annotating with them keeps a script light
    code = ("import sys, facecli; facecli.Face, facecli.Verification, facecli.Decision; "
            "print([m for m in ('cv2', 'onnxruntime', 'numpy') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["[]"]
