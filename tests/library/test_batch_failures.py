"""Hardening, one bad image in a batch: an exception in one image's detection or embedding is that
image's error, and the rest of the batch goes on.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("in_workers, batches", [(False, [3, 1, 1, 1]), (True, [2, 1, 1, 1, 1])],
                         ids=["one batch in this thread", "chunks in a worker"])
def test_an_image_failing_inside_detection_or_embedding_fails_alone(images, monkeypatch, in_workers, batches):
    """An unexpected exception in one image's detection or embedding is that image's error; the rest go on.

    A real failure of the detector or of onnxruntime cannot be had on demand
    for one chosen image, so one is raised (MemoryError, as an exhausted
    allocator raises) for obama.jpg's detection and for biden.jpg's crop.
    With one worker the batches are known: this thread embeds the three faces
    at once (a GPU's layout); the worker embeds the chunks [obama.jpg],
    [biden.jpg, obama2.jpg], [obama3.jpg] (the CPU's). A batch that fails is
    retried image by image. An image that ran out of memory in a worker is
    tried once more alone: obama.jpg's detection, and on the CPU biden.jpg's
    embedding (one more batch of 1, before obama3.jpg's chunk).
    """
    from facecli.pipeline import Pipeline

    pipeline = Pipeline(model="facenet", device="cpu", workers=1, in_workers=in_workers)
    paths = [str(images / n) for n in ("obama.jpg", "biden.jpg", "obama2.jpg", "obama3.jpg")]
    expected = {r.path: [f.embedding for f in r.faces] for r in pipeline.run(paths)}
    (biden_face,) = pipeline.analyse(paths[1]).faces
    detect, embed = pipeline.detector.detect, pipeline.embedder.embed_measured  # embeddings and quality signals
    calls = []

    detected_obama = []

    def failing_detect(image: np.ndarray):
        if image.shape[:2] == (1137, 910):  # obama.jpg
            detected_obama.append(1)
            raise MemoryError
        return detect(image)

    def failing_embed(crops):
        calls.append(len(crops))
        if any(np.array_equal(c[0], biden_face.crops[0]) for c in crops):
            raise MemoryError
        return embed(crops)

    monkeypatch.setattr(pipeline.detector, "detect", failing_detect)
    monkeypatch.setattr(pipeline.embedder, "embed_measured", failing_embed)
    results = list(pipeline.run(paths))
    assert [r.path for r in results] == paths
    assert str(results[0].error) == f"{paths[0]}: detecting failed: out of memory"
    assert str(results[1].error) == f"{paths[1]}: embedding failed: out of memory" and results[1].faces == []
    for r in results[2:]:
        assert r.error is None
        assert np.abs(np.stack([f.embedding for f in r.faces]) - np.stack(expected[r.path])).max() < 1e-5
    assert calls == batches  # the failing batch, then one retry per image with faces
    assert len(detected_obama) == 2  # beside the others, then alone
