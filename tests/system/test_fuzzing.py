"""Hardening, fuzzing: mutated JPEG and PNG files through decoding, detection and embedding never
crash, hang or leak.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facecli.errors import FaceCliError


# -- fuzzing -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_seeds(images: Path) -> list[bytes]:
    face = cv2.imread(str(images / "obama2.jpg"))
    face = cv2.resize(face, (96, 144), interpolation=cv2.INTER_AREA)
    return [cv2.imencode(".jpg", face)[1].tobytes(), cv2.imencode(".png", face)[1].tobytes()]


FUZZ_EXAMPLES = int(os.environ.get("FACECLI_FUZZ_EXAMPLES", "10000"))


def test_fuzzed_images_never_crash_hang_or_leak(pipeline, fuzz_seeds):
    from facecli.alignment import crop_face
    from facecli.imageio import decode

    counts = {"decoded": 0, "refused": 0, "faces": 0}
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    @settings(max_examples=FUZZ_EXAMPLES, deadline=5000, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, len(fuzz_seeds) - 1),
           edits=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=12),
           cut=st.one_of(st.none(), st.integers(0, 1 << 20)))
    def one(seed: int, edits: list[tuple[int, int]], cut: int | None) -> None:
        data = bytearray(fuzz_seeds[seed])
        for pos, value in edits:
            data[pos % len(data)] = value
        if cut is not None:
            data = data[: cut % (len(data) + 1)]
        try:
            image = decode(bytes(data), "fuzz")
        except FaceCliError:
            counts["refused"] += 1
            return
        counts["decoded"] += 1
        faces = pipeline.detector.detect(image)
        if faces:
            crops = np.stack([crop_face(image, f, (160, 160), 32) for f in faces])
            emb = pipeline.embedder.parts[0].embed(crops)
            assert np.isfinite(emb).all()
            counts["faces"] += len(faces)

    one()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_start) / 1024
    print(f"fuzz: {FUZZ_EXAMPLES} inputs, {counts}, peak RSS grew {grown_mb:.0f} MB")
    assert counts["decoded"] + counts["refused"] == FUZZ_EXAMPLES
    assert counts["decoded"] > 0 and counts["refused"] > 0
    assert grown_mb < 1024
