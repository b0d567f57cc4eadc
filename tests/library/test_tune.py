"""facecli tune's library: training, export and loading of projection heads on real LFW embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from facecli.calibration import tau_for
from facecli.errors import FaceCliError, ModelError
from facecli.heads import load_head, sidecar
from facecli.models import pipeline_spec
from facecli.modes import HEADS
from facecli.tune import (
    Labelled,
    TuneConfig,
    export_head,
    mean_triplet_loss,
    split_people,
    train_head,
)
from tests.helpers import heads
from tests.helpers.heads import FAST

ALPHA = 0.2


# -- real embeddings: a slice of LFW ---------------------------------------------------------------
@pytest.fixture(scope="module")
def lfw_slice() -> Labelled:
    """SFace embeddings (the evaluation's, cached) of 24 LFW people with 4+ photos and 16 with one."""
    return heads.lfw_slice("sface")


@pytest.fixture(scope="module")
def trained(lfw_slice):
    return {kind: train_head(lfw_slice, TuneConfig(**{**FAST.__dict__, "head": kind})) for kind in HEADS}


def test_the_people_are_split_disjointly(lfw_slice):
    train, val = split_people(lfw_slice.people, 0.25, seed=0)
    assert not set(train) & set(val) and set(train) | set(val) == set(lfw_slice.people)
    counts = {n: list(lfw_slice.people).count(n) for n in set(lfw_slice.people)}
    assert sum(counts[n] >= 2 for n in val) == 6 and sum(counts[n] == 1 for n in val) == 4  # a quarter of each
    assert split_people(lfw_slice.people, 0.25, seed=1) != (train, val)


def test_training_lowers_the_triplet_loss_of_the_training_people(lfw_slice, trained):
    people = np.asarray(lfw_slice.people)
    for kind, res in trained.items():
        rows = np.isin(people, res.train_people)
        before = mean_triplet_loss(lfw_slice.embeddings[rows], people[rows], ALPHA)
        after = mean_triplet_loss(res.final_head.forward(lfw_slice.embeddings[rows]), people[rows], ALPHA)
        assert after < 0.8 * before, kind
        assert not set(res.train_people) & set(res.val_people)
        assert [h.epoch for h in res.history] == list(range(13))
        assert all(0 <= h.active <= 1 for h in res.history[1:])
        assert res.history[res.best_epoch].val_fnir == min(h.val_fnir for h in res.history)


def test_training_is_deterministic_for_a_seed(lfw_slice, trained, tmp_path):
    again = train_head(lfw_slice, TuneConfig(**{**FAST.__dict__, "head": "linear"}))
    assert all(np.array_equal(p, q) for p, q in zip(again.final_head.params, trained["linear"].final_head.params))
    assert export_head(again.head, again.metadata(), tmp_path / "a.onnx") == \
        export_head(trained["linear"].head, trained["linear"].metadata(), tmp_path / "b.onnx")
    other = train_head(lfw_slice, TuneConfig(**{**FAST.__dict__, "seed": 1, "epochs": 2}))
    assert other.val_people != again.val_people


@pytest.mark.parametrize("kind", HEADS)
def test_the_exported_graph_reproduces_the_numpy_head(lfw_slice, trained, tmp_path, kind):
    res = trained[kind]
    path = tmp_path / "head.onnx"
    digest = export_head(res.final_head, res.metadata(), path)
    head = load_head(path)
    assert head.sha256 == digest and sidecar(path).read_text().split()[0] == digest
    x = lfw_slice.embeddings
    assert np.abs(head.apply(x) - res.final_head.forward(x)).max() <= 1e-5
    assert np.abs(res.final_head.forward(x) - x).max() > 1e-3  # training moved it away from the identity
    meta = head.metadata
    assert (meta["base_model"], meta["input_dim"], meta["output_dim"], meta["loss"], meta["margin"], meta["mining"]) \
        == ("sface", 128, 128, "triplet", 0.2, "semi-hard")
    assert meta["dataset_sha256"] == lfw_slice.sha256() and meta["validation"]["head"]["at_fpir"]["0.01"]
    head.check_model("sface", 128)
    with pytest.raises(ModelError, match="trained on sface"):
        head.check_model("fusion", 640)


def test_a_head_is_refused_unless_its_sha256_checks(lfw_slice, trained, tmp_path):
    res = trained["linear"]
    path = tmp_path / "head.onnx"
    digest = export_head(res.head, res.metadata(), path)
    sidecar(path).unlink()
    with pytest.raises(ModelError, match="missing"):
        load_head(path)
    assert load_head(path, expected_sha256=digest).sha256 == digest  # a gallery's recorded sha256 suffices
    sidecar(path).write_text(f"{'0' * 64}  head.onnx\n")
    with pytest.raises(ModelError, match="sha256"):
        load_head(path)


def test_the_heads_impostor_quantiles_calibrate_tau_for(lfw_slice, trained, tmp_path):
    res = trained["linear"]
    path = tmp_path / "head.onnx"
    export_head(res.head, res.metadata(), path)
    spec = load_head(path).calibration(pipeline_spec("sface"))
    imp = res.impostor
    assert imp["pairs"] > 0 and imp["p"] == sorted(imp["p"]) and imp["d"] == sorted(imp["d"])
    assert min(imp["p"]) * imp["pairs"] >= 1  # no quantile rarer than one pair
    tau = tau_for(spec, 1, 0.5)
    assert imp["d"][0] <= tau <= imp["d"][-1]
    with pytest.raises(FaceCliError, match="calibrated for galleries of up to 0 people"):
        tau_for(spec, 1000, 0.001)  # far beyond what ten validation people can tell
    tail = imp["tail"]  # too few people for the tail to be trusted anywhere
    assert (tail["people"], tail["pairs"], tail["trusted"]) == (10, imp["pairs"], False)


def test_the_curves_plot(trained, tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (the [plot] extra)")
    from facecli.tune import plot_curves

    plot_curves(trained["two-layer"], tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_without_one_photo_people_half_of_the_validation_people_are_strangers(lfw_slice):
    many = np.array([list(lfw_slice.people).count(p) >= 2 for p in lfw_slice.people])
    data = Labelled(lfw_slice.embeddings[many], np.asarray(lfw_slice.people)[many], "sface")
    res = train_head(data, TuneConfig(**{**FAST.__dict__, "epochs": 1}))
    val = res.validation["head"]
    assert len(res.val_people) == 6 and (val["enrolled"], val["strangers"]) == (3, 3)
