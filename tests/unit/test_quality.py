"""Face quality's signals on a real photo's aligned crop, and the rule that sets too-poor faces aside (no models:
the face's box and landmarks are the manifest's record of obama.jpg, its crop made as SFace's alignment says)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from facecli import decisions
from facecli.alignment import align_five_points
from facecli.errors import BadValue
from facecli.models import pipeline_spec, spec
from facecli.paths import MANIFEST
from facecli.quality import FEATURES, QualityModel, measure
from facecli.values import Decision, Detection, Face, Threshold, decision_label


def _obama(images) -> tuple[np.ndarray, Detection]:
    """obama.jpg in RGB, and its face as YuNet finds it (recorded in the manifest for the int8 calibration)."""
    recorded = json.loads(MANIFEST.read_text())["int8_calibration"]["faces"]
    (face,) = [f for f in recorded if f["member"].endswith("/obama.jpg")]
    image = cv2.cvtColor(cv2.imread(str(images / "obama.jpg")), cv2.COLOR_BGR2RGB)
    return image, Detection(tuple(face["box"]), 0.95, np.asarray(face["landmarks"]))


def _crop(image: np.ndarray, det: Detection) -> np.ndarray:
    sface = spec("sface")
    return align_five_points(image, det.landmarks, tuple(sface.input["size"]),
                             np.asarray(sface.alignment["template"], dtype=np.float64))


def test_blur_and_darkness_show_in_the_signals_of_a_real_face(images):
    image, det = _obama(images)
    clean = measure(det, _crop(image, det), 12.0, 0.97)
    blurred = measure(det, _crop(cv2.GaussianBlur(image, (0, 0), 6), det), 12.0, 0.97)
    dark = measure(det, _crop((image * 0.15).astype(np.uint8), det), 12.0, 0.97)
    assert clean.size == pytest.approx(min(det.width, det.height)) and clean.score == pytest.approx(0.95)
    assert blurred.sharpness < clean.sharpness / 10  # blur leaves no fine detail
    assert dark.brightness < clean.brightness / 4 and dark.contrast < clean.contrast / 4
    assert dark.clipped > clean.clipped  # crushed to black
    assert clean.mirror == pytest.approx(0.97) and clean.norm == pytest.approx(12.0)


@pytest.mark.parametrize("model", ["fusion", "sface"])
def test_the_shipped_quality_models_are_complete_and_score_in_0_1(model, images):
    qm = QualityModel.of(pipeline_spec(model))
    assert qm is not None and 0 < qm.min_quality < 1 and set(qm.features) <= set(FEATURES)
    image, det = _obama(images)
    q = qm.score(measure(det, _crop(image, det), 12.0, 0.97))
    assert 0.0 <= q <= 1.0


def test_min_quality_comes_from_the_manifest_and_an_explicit_one_is_checked():
    assert decisions.min_quality("fusion") == pipeline_spec("fusion").quality["min_quality"]
    assert decisions.min_quality("fusion", 0) == 0.0 and decisions.min_quality("fusion", 0.5) == 0.5
    assert decisions.min_quality("facenet") == 0.0  # no quality model: no face is judged
    for model, bad in (("fusion", 1.5), ("fusion", -0.1), ("facenet", 0.3)):
        with pytest.raises(BadValue) as err:
            decisions.min_quality(model, bad)
        assert err.value.setting == "min_quality"


def test_too_poor_faces_keep_their_candidate_and_distance_but_no_name():
    faces = [Face(i, Detection(box, 0.9), (), quality=q) for i, (box, q) in enumerate(
        [((0, 0, 100, 100), 0.9), ((0, 0, 100, 100), 0.1), ((0, 0, 12, 30), 0.1), ((0, 0, 100, 100), None)])]
    found = [Decision(n, 0.3, [], Threshold(1.0)) for n in ("alice", "bob", "carol", "dave")]
    good, poor, small, unmeasured = decisions.too_poor(faces, decisions.too_small(faces, found, 20), 0.5)
    assert good.name == "alice" and not good.too_poor
    assert poor.name is None and poor.too_poor and poor.distance == 0.3 and poor.label == "too poor to identify"
    assert small.too_small and not small.too_poor and small.label == "too small to identify"  # too small comes first
    assert unmeasured.name == "dave"  # a face without a quality is never too poor
    assert decisions.too_poor(faces, found, 0.0)[1].name == "bob"  # 0 disables the rule
    assert decision_label(None, too_poor=True) == "too poor to identify"
