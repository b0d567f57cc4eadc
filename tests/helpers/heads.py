"""Real projection heads for the tests: SFace embeddings of a slice of LFW, a head trained on them, exported.

LFW is the shared benchmark beside the checkout (``../shared/lfw``, or beside
the folder of worktrees, or ``FACECLI_LFW``); without it these tests skip,
saying so: a head needs photos of many people to learn from and to be
validated on. The embeddings come from the evaluation's cache, so a second
run costs no embedding.

On clean LFW photos a head gains nothing on its validation people and keeps
its starting point, the identity (bench/ACCURACY.md, "Issue 18"); the heads
that galleries use in the tests are trained where a head does learn, on the
same people's photos shifted as bench/tune_lfw.py's ``lowq`` shifts them
(100 x 100 px, grey, JPEG quality 10), so that matching through them really
differs from matching without.
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest

from facecli.tune import Labelled, TuneConfig, export_head, train_head

ROOT = Path(__file__).resolve().parents[2]
LFW = next((p for p in (Path(os.environ.get("FACECLI_LFW", "/nonexistent")), ROOT.parent / "shared" / "lfw",
                        ROOT.parent.parent / "shared" / "lfw") if (p / "images").is_dir()), None)
#: Small batches and a fast step, so that a dozen epochs move the head on a few dozen people.
FAST = TuneConfig(people_per_batch=8, images_per_person=4, epochs=12, patience=12, learning_rate=2e-3, seed=0)


def lfw_or_skip() -> Path:
    if LFW is None:
        pytest.skip("LFW is absent (../shared/lfw or FACECLI_LFW): a head needs real photos of many people")
    return LFW


def lfw_people(many: int, single: int, per_person: int = 6, skip: int = 0) -> list[Path]:
    """The first ``many`` LFW people with 4+ photos (after ``skip`` of them) and ``single`` with one photo."""
    people = sorted(p for p in (lfw_or_skip() / "images").iterdir() if p.is_dir())
    sizes = {p: len(list(p.glob("*.jpg"))) for p in people}
    chosen = [p for p in people if sizes[p] >= 4][skip:skip + many] + [p for p in people if sizes[p] == 1][:single]
    return [f for p in chosen for f in sorted(p.glob("*.jpg"))[:per_person]]


def _shifted(photo: Path, target: Path) -> None:
    """A poor camera far away: 100 x 100 pixels, grey, JPEG quality 10."""
    small = cv2.resize(cv2.imread(str(photo)), (100, 100), interpolation=cv2.INTER_AREA)
    target.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(target), cv2.cvtColor(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 10])


@cache
def lfw_slice(model: str = "sface", shifted: bool = False) -> Labelled:
    """``model``'s embeddings of 24 LFW people with 4+ photos (6 each at most) and 16 with one, as `facecli eval`
    computes them (the central face; cached by content); ``shifted``: of their shifted copies."""
    from facecli.evaluation import LabelledEmbedder

    photos = lfw_people(24, 16)
    with tempfile.TemporaryDirectory() as tmp:
        files = [Path(tmp) / p.parent.name / p.name if shifted else p for p in photos]
        for photo, file in zip(photos, files):
            if shifted:
                _shifted(photo, file)
        emb, _ = LabelledEmbedder(model, device="cpu").embed([str(f) for f in files])
    return Labelled(np.stack([emb[str(f)] for f in files]), [p.parent.name for p in photos], model,
                    [p.name for p in photos])


def write_head(folder: Path, name: str = "head.onnx", seed: int = 0, model: str = "sface") -> Path:
    """A linear head trained with ``FAST`` (and ``seed``) on ``lfw_slice``'s shifted photos, written to
    ``folder/name``."""
    result = train_head(lfw_slice(model, shifted=True), TuneConfig(**{**FAST.__dict__, "seed": seed}))
    path = folder / name
    export_head(result.head, result.metadata(), path)
    return path
