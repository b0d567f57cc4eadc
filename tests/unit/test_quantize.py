"""The int8 model's calibration crops and the rounding of its ranges, on the photos (no models)."""

from __future__ import annotations

import numpy as np


def test_calibration_crops_are_reproducible_and_ranges_round_outward(images):
    import json

    from facecli.modelbuild.quantize_onnx import _round_out, calibration_crops
    from facecli.models import spec
    from facecli.paths import MANIFEST

    s = spec("facenet-int8")
    section = json.loads(MANIFEST.read_text())[s.build["calibration"]]
    setup = {"input": s.input, "preprocess": s.preprocess, "alignment": s.alignment,
             "calibration": {**section, "per_face": 3}}
    first, again = calibration_crops(setup, images), calibration_crops(setup, images)
    assert first.shape == (3 * len(section["faces"]), 160, 160, 3) and np.array_equal(first, again)
    assert len({c.tobytes() for c in first}) == len(first)  # every variant differs
    assert (_round_out(0.012345, True), _round_out(0.012345, False)) == (0.0123, 0.0124)
    assert (_round_out(-5.678, True), _round_out(-5.678, False), _round_out(0.0, True)) == (-5.68, -5.67, 0.0)
