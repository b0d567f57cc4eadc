"""The face mesh and blendshapes (MediaPipe Face Landmarker v2 on onnxruntime) on real photos and a real video:
the ONNX files against the original TFLite ones, the points against YuNet's, a turned face, no face, and blinks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facecli.facemesh import crop_matrix
from facecli.imageio import read_image
from facecli.models import source_path, spec
from facecli.values import Detection

#: the mesh points nearest YuNet's five landmarks: the two iris centres, the nose tip, the mouth corners
FIVE = [468, 473, 1, 61, 291]
PHOTOS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]


def eye_openness(points: np.ndarray) -> float:
    """Lid gap over eye width, both eyes averaged (an eye-aspect ratio on the mesh's eyelid and corner points)."""
    def ratio(top: int, bottom: int, outer: int, inner: int) -> float:
        return float(np.linalg.norm(points[top, :2] - points[bottom, :2])
                     / np.linalg.norm(points[outer, :2] - points[inner, :2]))

    return (ratio(159, 145, 33, 133) + ratio(386, 374, 362, 263)) / 2


def test_the_onnx_models_compute_what_the_tflite_files_of_the_wheel_compute(images, mesh, yunet):
    """OpenCV's TFLite importer runs the original files (checked by sha256 out of the .task bundle): on the crop
    of a real face and on that face's points, the converted models give the same outputs."""
    rgb = read_image(str(images / "obama.jpg"))
    square = mesh.square(yunet.detect(rgb)[0])
    m = crop_matrix(square, 256)
    m[:, 2] -= 0.5
    crop = cv2.warpAffine(rgb, m, (256, 256), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    x = crop.astype(np.float32)[None] / np.float32(spec("face-mesh").preprocess["std"])
    tflite = cv2.dnn.readNetFromTFLite(str(source_path("face-mesh")))
    tflite.setInput(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # OpenCV's importer takes NCHW
    want_points, want_presence = tflite.forward(["Identity", "Identity_1"])
    session = mesh._session("face-mesh")
    got_points, got_presence = session.run(["Identity", "Identity_1"], {"input_12": x})
    assert np.abs(got_points.ravel() - want_points.ravel()).max() < 0.01  # crop pixels, of 256
    assert abs(float(got_presence.ravel()[0]) - float(want_presence.ravel()[0])) < 0.01
    assert float(want_presence.ravel()[0]) > 5  # a face: a large logit

    points = mesh.landmarks(rgb, yunet.detect(rgb)[0]).points
    shapes = spec("face-blendshapes")
    x = points[shapes.preprocess["subset"], :2][None].astype(np.float32)
    tflite = cv2.dnn.readNetFromTFLite(str(source_path("face-blendshapes")))
    tflite.setInput(x)
    want = tflite.forward().ravel()
    got = mesh._session("face-blendshapes").run(None, {shapes.input["name"]: x})[0].ravel()
    assert want.shape == got.shape == (52,) and np.abs(got - want).max() < 1e-4


@pytest.mark.parametrize("name", PHOTOS)
def test_the_mesh_lands_on_the_face_yunet_found(images, mesh, yunet, name):
    rgb = read_image(str(images / name))
    det = yunet.detect(rgb)[0]
    m = mesh.landmarks(rgb, det)
    assert m.points.shape == (478, 3) and m.points.dtype == np.float32 and m.presence > 0.99
    off = np.linalg.norm(m.points[FIVE, :2] - det.landmarks, axis=1) / det.width
    assert off.max() < 0.1 and off.mean() < 0.05, off  # measured: at most 0.065, mean 0.029-0.044
    x1, y1, x2, y2 = det.box
    inside = (m.points[:, 0] > x1 - 0.2 * det.width) & (m.points[:, 0] < x2 + 0.2 * det.width) \
        & (m.points[:, 1] > y1 - 0.2 * det.height) & (m.points[:, 1] < y2 + 0.2 * det.height)
    assert inside.all()
    refined = mesh.landmarks(rgb, previous=m)  # MediaPipe's second square, from the first mesh: nearly the same
    assert np.abs(refined.points[:, :2] - m.points[:, :2]).max() < 0.05 * det.width and refined.presence > 0.99


@pytest.mark.parametrize("degrees", [30, -25])
def test_a_turned_face_gets_the_same_mesh_turned(images, mesh, yunet, degrees):
    """The crop is turned by the eye line and the points turned back: the mesh of a photo turned by 30 degrees is
    the photo's mesh turned by 30 degrees, to about 1 % of the face's width."""
    rgb = read_image(str(images / "obama.jpg"))
    det = yunet.detect(rgb)[0]
    upright = mesh.landmarks(rgb, det).points[:, :2]
    turn = cv2.getRotationMatrix2D(((det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2), degrees, 1.0)
    turned = cv2.warpAffine(rgb, turn, (rgb.shape[1], rgb.shape[0]))
    got = mesh.landmarks(turned, yunet.detect(turned)[0]).points[:, :2]
    off = np.linalg.norm(got - (upright @ turn[:, :2].T + turn[:, 2]), axis=1) / det.width
    assert np.median(off) < 0.02 and np.percentile(off, 95) < 0.04, (np.median(off), np.percentile(off, 95))


def test_no_face_in_the_crop_has_no_presence(images, mesh):
    rgb = read_image(str(images / "obama.jpg"))
    for box in [(0.0, 700.0, 240.0, 1030.0), (650.0, 0.0, 900.0, 330.0)]:  # the photo's background
        assert mesh.landmarks(rgb, Detection(box, 1.0)).presence < 0.01


def test_landmarks_need_a_detection_or_a_previous_mesh(mesh, images):
    with pytest.raises(ValueError, match="detection or a previous mesh"):
        mesh.landmarks(read_image(str(images / "obama.jpg")))


@pytest.fixture(scope="module")
def tracked(blink_clip, mesh, yunet):
    """The clip's frames tracked as MediaPipe tracks a video: YuNet on the first frame, then each frame's mesh
    from the previous one; (eyeBlink mean of both eyes, eye openness) per frame."""
    video, _ = blink_clip
    cap = cv2.VideoCapture(str(video))
    previous, rows = None, []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        m = mesh.landmarks(rgb, None if previous else yunet.detect(rgb)[0], previous=previous)
        assert m.presence > 0.9  # one face throughout: the tracked mesh never loses it
        shapes = mesh.blendshapes(m)
        assert list(shapes)[:3] == ["_neutral", "browDownLeft", "browDownRight"] and len(shapes) == 52
        rows.append(((shapes["eyeBlinkLeft"] + shapes["eyeBlinkRight"]) / 2, eye_openness(m.points)))
        previous = m
    cap.release()
    return np.array(rows)


def test_blendshapes_and_the_mesh_see_each_annotated_blink(blink_clip, tracked):
    """Each annotated blink peaks well above every open-eyed frame: eyeBlink (measured: peaks 0.63-0.69, open
    frames at most 0.39) and the lids' gap (at least 0.15 open, at most 0.044 in a blink). Open frames are those
    6 or more frames from a blink, less 233-273, between blinks 2 and 3, where the annotation marks no blink but
    the man looks down with his lids nearly shut (eyeBlink 0.6 there, which is what the model should say)."""
    _, blinks = blink_clip
    assert len(tracked) == 300 and [(r.start, r.stop) for r in blinks] == [(168, 177), (225, 233), (274, 281)]
    near = {i + d for r in blinks for i in r for d in range(-6, 7)}
    open_frames = [i for i in range(len(tracked)) if i not in near and not blinks[1].stop <= i < blinks[2].start]
    blink, openness = tracked[:, 0], tracked[:, 1]
    for r in blinks:
        assert blink[list(r)].max() > blink[open_frames].max() + 0.15, (r, blink[list(r)].max())
        assert openness[list(r)].min() < openness[open_frames].min() / 2, (r, openness[list(r)].min())
