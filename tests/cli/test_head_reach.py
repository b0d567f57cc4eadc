"""A head's calibration on people it never saw (issue 27): a head tuned on LFW people reaches a one-shot gallery of
300 others, which keeps it; identify runs against it at the default tau with no --head, and the share of strangers
(people in neither set) it names stays near the 1 % aimed at.

The full check, three splits of all LFW and galleries up to 700 people, is bench/head_reach.py (bench/ACCURACY.md,
"Issue 27"); this one is its smaller version on SFace (embeddings cached by the evaluation: a second run embeds
only what the command line enrolls and identifies).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facecli.calibration import largest_gallery
from facecli.evaluation import LabelledEmbedder
from facecli.gallery import identification, open_gallery
from facecli.heads import load_head
from facecli.models import pipeline_spec
from facecli.tune import Labelled, TuneConfig, export_head, train_head
from tests.helpers import heads, json_rows

K = 300


@pytest.fixture(scope="module")
def lfw() -> dict[str, list[Path]]:
    """Person-disjoint LFW sets: ``tune`` (40 people with 4+ photos, 4 each, and 800 with one), ``gallery`` (300
    people with two photos or more: the first enrolled, the second searched) and ``strangers`` (300 others with
    one photo)."""
    root = heads.lfw_or_skip() / "images"
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    photos = {p: sorted(p.glob("*.jpg")) for p in folders}
    many = [p for p in folders if len(photos[p]) >= 4]
    two = [p for p in folders if 2 <= len(photos[p]) < 4]
    single = [p for p in folders if len(photos[p]) == 1]
    tune = many[:40]
    gallery = (many[40:] + two)[::2][:K]
    return {"tune": [f for p in tune for f in photos[p][:4]] + [photos[p][0] for p in single[:800]],
            "gallery": [photos[p][0] for p in gallery], "probes": [photos[p][1] for p in gallery],
            "strangers": [photos[p][0] for p in single[800:800 + K]]}


@pytest.fixture(scope="module")
def embedded(lfw) -> dict[str, np.ndarray]:
    """SFace embeddings of every photo, as `facecli eval` computes them (cached)."""
    files = [str(f) for group in lfw.values() for f in group]
    emb, _ = LabelledEmbedder("sface", device="cpu").embed(files)
    return {name: np.stack([emb[str(f)] for f in group]) for name, group in lfw.items()}


def test_a_head_identifies_a_300_person_gallery_of_other_people_at_the_default_tau(lfw, embedded, run, tmp_path):
    people = [f.parent.name for f in lfw["tune"]]
    result = train_head(Labelled(embedded["tune"], people, "sface"),
                        TuneConfig(epochs=4, people_per_batch=8, learning_rate=2e-3, val_fraction=0.75))
    path = tmp_path / "head.onnx"
    export_head(result.head, result.metadata(), path)
    head = load_head(path)
    tail = head.impostor["tail"]
    assert tail["trusted"] and tail["people"] == len(result.val_people) == 630
    assert largest_gallery(head.calibration(pipeline_spec("sface"))) >= K

    folder = tmp_path / "people"  # enroll --dir's layout: one photo each
    for photo in lfw["gallery"]:
        (folder / photo.parent.name).mkdir(parents=True)
        (folder / photo.parent.name / photo.name).symlink_to(photo)
    assert run("enroll", "--dir", str(folder), "--model", "sface", "--largest").returncode == 0
    assert run("gallery", "set", "--head", str(path)).returncode == 0
    path.unlink()  # the gallery keeps it

    sample = [str(f) for f in lfw["probes"][:5] + lfw["strangers"][:5]]
    found = run("identify", *sample, "--json")  # no --head, no --tau
    rows = json_rows(found.stdout)
    assert found.returncode == 0 and {r["file"] for r in rows} == set(sample)
    with open_gallery(run.gallery) as g:
        threshold = identification.threshold(g, head=head)
        assert {(r["gallery_size"], r["fpir"], r["tau"]) for r in rows} == {(K, 0.01, threshold.tau)}
        named = [d.name for d in identification.decide(g, head.apply(embedded["strangers"]), threshold, head)]
        right = [d.name == f.parent.name for d, f in zip(
            identification.decide(g, head.apply(embedded["probes"]), threshold, head), lfw["probes"])]
    for file, name in zip(sample[5:], named):  # the command decides as the library does (one-face photos)
        faces = [r for r in rows if r["file"] == file]
        assert len(faces) > 1 or faces[0]["name"] == name
    fpir = sum(n is not None for n in named) / K
    assert fpir <= 0.03, f"{fpir:.2%} of {K} strangers named at the default tau (FPIR target 1 %)"
    assert np.mean(right) >= 0.85
