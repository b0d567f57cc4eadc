"""Real projection heads for the tests: SFace embeddings of a slice of LFW, a head trained on them, exported.

LFW is the shared benchmark beside the checkout (``../shared/lfw``, or beside
the folder of worktrees, or ``FACECLI_LFW``); without it these tests skip,
saying so: a head needs photos of many people to learn from and to be
validated on. The embeddings come from the evaluation's cache, so a second
run costs no embedding.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from facecli.tune import Labelled, TuneConfig, export_head, train_head

ROOT = Path(__file__).resolve().parents[1]
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


@cache
def lfw_slice(model: str = "sface") -> Labelled:
    """``model``'s embeddings of 24 LFW people with 4+ photos (6 each at most) and 16 with one, as `facecli eval`
    computes them (the central face; cached)."""
    from facecli.evaluation import LabelledEmbedder

    paths = [str(p) for p in lfw_people(24, 16)]
    emb, _ = LabelledEmbedder(model, device="cpu").embed(paths)
    return Labelled(np.stack([emb[p] for p in paths]), [Path(p).parent.name for p in paths], model,
                    [Path(p).name for p in paths])


def write_head(folder: Path, name: str = "head.onnx", seed: int = 0, model: str = "sface") -> Path:
    """A linear head trained on ``lfw_slice`` with ``FAST`` (and ``seed``), written to ``folder/name``."""
    result = train_head(lfw_slice(model), TuneConfig(**{**FAST.__dict__, "seed": seed}))
    path = folder / name
    export_head(result.head, result.metadata(), path)
    return path
