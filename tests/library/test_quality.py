"""Face quality measured by the pipeline on real photos: a clear face is judged, a blurred or darkened copy of it
scores lower, and a face too poor to judge is not named by identify (the real models)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facecli import decisions
from facecli.pipeline import Pipeline


@pytest.fixture(scope="module")
def fusion() -> Pipeline:
    return Pipeline(model="fusion", device="cpu")


def _copies(images, folder) -> dict[str, str]:
    """obama.jpg as it is, blurred (the face is 240 px wide), and darkened with sensor noise (fixed seed)."""
    photo = cv2.imread(str(images / "obama.jpg"))
    noise = np.random.default_rng(0).normal(0, 8, photo.shape)
    made = {"original": photo, "blurred": cv2.GaussianBlur(photo, (0, 0), 15),
            "dark": np.clip(photo * 0.1 + noise, 0, 255).astype(np.uint8)}
    out = {}
    for name, pixels in made.items():
        out[name] = str(folder / f"{name}.png")
        cv2.imwrite(out[name], pixels)
    return out


def test_blurred_and_darkened_copies_of_a_real_face_score_lower(fusion, images, tmp_path):
    paths = _copies(images, tmp_path)
    faces = {name: r.faces[0] for name, r in zip(paths, fusion.run(list(paths.values())))}
    q = {name: f.quality for name, f in faces.items()}
    assert q["original"] >= decisions.min_quality("fusion"), q  # a clear face is judged
    assert q["blurred"] < q["original"] and q["dark"] < q["original"], q
    s = {name: f.signals for name, f in faces.items()}
    assert s["blurred"].sharpness < s["original"].sharpness and s["dark"].brightness < s["original"].brightness
    assert all(0 < f.signals.mirror <= 1 and f.signals.norm > 0 for f in faces.values())
