"""`people --unnamed` matches new faces against cluster centres a block at a time: the answer does not depend on
the block (random unit vectors; the real-photo behaviour is tests/library/test_photo_index.py's)."""

from __future__ import annotations

import numpy as np

from facecli.library import _nearest_centres


def test_nearest_centres_in_blocks_are_the_whole_matrix_answer():
    rng = np.random.default_rng(7)
    vecs, centres = rng.normal(size=(53, 16)), rng.normal(size=(11, 16))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    whole = ((vecs[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    for block in (1, 7, 11, 12, 10_000):  # one row, rows split unevenly, exactly one row, several, all at once
        best, nearest = _nearest_centres(vecs.astype(np.float32), centres.astype(np.float32), block)
        assert np.array_equal(best, whole.argmin(axis=1))
        assert np.allclose(nearest, whole.min(axis=1), atol=1e-5)
