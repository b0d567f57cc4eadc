"""The liveness rules on hand-made values: the verdict's one rule, the challenge's draw and wording, the depth
check's residuals on points of a plane and of a solid, and a mesh series' time order."""

from __future__ import annotations

import random

import numpy as np
import pytest

from facecli.decisions import liveness
from facecli.liveness.challenge import STEPS, Challenge
from facecli.liveness.depth import homography_residual, similarity_residual
from facecli.liveness.series import MeshSeries


@pytest.mark.parametrize(("blinked", "flat", "challenge", "complete", "live"), [
    (True, None, None, False, True),       # a blink, depth could not tell: live at once
    (True, False, None, False, True),
    (True, True, None, True, False),       # a blink on a flat picture (a replay on a moving screen): not live
    (False, None, None, False, None),      # still watching
    (False, None, None, True, False),      # the window watched, no blink
    (True, None, "pending", False, None),  # blinked, the challenge not done yet
    (True, None, "failed", False, False),
    (True, None, "passed", False, True),
    (False, None, "passed", True, False),  # the challenge done, but no blink in the window
])
def test_one_rule_decides_liveness(blinked, flat, challenge, complete, live):
    assert liveness(blinked, flat, challenge, complete)[0] is live


def test_a_challenge_is_drawn_from_its_steps_and_reads_as_one_instruction():
    drawn = {Challenge.random(rng=random.Random(seed)).steps for seed in range(50)}
    assert all(len(s) == 2 and len(set(s)) == 2 and set(s) <= set(STEPS) for s in drawn)
    assert len(drawn) == 6  # every ordered pair of different steps comes up
    assert Challenge(("turn-left", "blink-twice")).text == "turn your head to your left, then blink twice"
    assert Challenge.random().steps[0] in STEPS  # the system's secure source by default
    with pytest.raises(ValueError, match="turn-left"):
        Challenge(("nod",))


def _project(points: np.ndarray, yaw_degrees: float) -> np.ndarray:
    """Points (K, 3) turned about the vertical axis and seen by a pinhole camera 5 units away."""
    a = np.radians(yaw_degrees)
    r = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    p = points @ r.T + [0, 0, 5]
    return p[:, :2] / p[:, 2:3]


def test_a_plane_moves_by_a_homography_and_a_solid_does_not():
    rng = np.random.default_rng(0)
    flat = np.c_[rng.uniform(-1, 1, (60, 2)), np.zeros(60)]
    solid = np.c_[rng.uniform(-1, 1, (60, 2)), rng.uniform(-0.6, 0.6, 60)]
    for points in (flat, solid):
        a, b = _project(points, 0), _project(points, 15)
        assert similarity_residual(a, b) > 0.005  # both changed shape
    assert homography_residual(_project(flat, 0), _project(flat, 15)) < 1e-6
    assert homography_residual(_project(solid, 0), _project(solid, 15)) > 0.3 * similarity_residual(
        _project(solid, 0), _project(solid, 15))


def test_a_series_keeps_time_order():
    points = np.zeros((478, 3))
    assert len(MeshSeries.of([(0.0, points), (0.1, points)])) == 2
    with pytest.raises(ValueError, match="increase"):
        MeshSeries.of([(0.1, points), (0.1, points)])
