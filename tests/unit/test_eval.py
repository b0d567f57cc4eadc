"""LFW evaluation's logic: the folds on a hand-computed example, the LFW pairs file, tau at an FPIR (no
models).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facecli.evaluation import kfold_accuracy, read_lfw_pairs, report, roc_auc
from tests.helpers import ROOT

LFW = ROOT.parent / "shared" / "lfw"


def _example():
    """4 folds x (2 same + 2 different); fold 0 holds one hard same pair at 1.55."""
    same_d, diff_d = [0.5, 0.6], [1.5, 1.6]
    d, same, fold = [], [], []
    for k in range(4):
        s = [0.5, 1.55] if k == 0 else same_d
        d += s + diff_d
        same += [True, True, False, False]
        fold += [k] * 4
    return np.array(d), np.array(same), np.array(fold)


def test_fold_logic_on_a_hand_computed_example():
    d, same, fold = _example()
    accs, taus = kfold_accuracy(d, same, fold)
    # Training on any three folds, every threshold in (0.6, 1.5] errs at most on the hard pair,
    # and the first of them on the 0.01 grid is 0.61.
    assert taus == pytest.approx([0.61] * 4)
    # Fold 0 with tau 0.61: 0.5 same ok, 1.55 same missed, both different pairs ok.
    assert accs.tolist() == [0.75, 1.0, 1.0, 1.0]
    rep = report(d, same, fold)
    assert rep.accuracy == pytest.approx(0.9375)
    # 7 genuine pairs beat all 8 impostors; the hard one beats only the four at 1.6.
    assert roc_auc(d, same) == pytest.approx((7 * 8 + 4) / 64)


def test_lfw_pairs_file_is_read_in_fold_order():
    if not LFW.exists():
        pytest.skip(f"{LFW} is absent (the shared LFW benchmark)")
    pairs = read_lfw_pairs(LFW / "pairs.txt", LFW / "images")
    assert len(pairs.a) == 6000 and pairs.same.sum() == 3000
    assert pairs.fold[0] == 0 and pairs.fold[-1] == 9 and pairs.same[:300].all() and not pairs.same[300:600].any()
    assert all(Path(p).exists() for p in pairs.a[:50] + pairs.b[:50])


def test_tau_at_fpir_admits_at_most_that_share_of_strangers():
    from facecli.evaluation.openset import tau_at_fpir

    strangers = np.array([0.9, 1.2, 1.0, 1.5] * 25)  # 100 strangers
    for fpir in (0.0, 0.01, 0.25, 0.3, 0.5):
        tau = tau_at_fpir(strangers, fpir)
        assert np.mean(strangers <= tau) <= fpir
    assert tau_at_fpir(strangers, 0.25) >= 0.9 and tau_at_fpir(strangers, 0.5) >= 1.0


def test_openset_figures_name_no_ambiguous_face_at_any_tau_and_stay_valid_json():
    from facecli.evaluation.openset import OpenSet, openset_report
    from facecli.values import Threshold

    def unit(*v: float) -> np.ndarray:
        x = np.array(v, dtype=np.float32)
        return x / np.linalg.norm(x)

    openset = OpenSet({"alice": ["a0"], "bob": ["b0"]}, [("a1", "alice"), ("a2", "alice")], ["s1", "s2"])
    emb = {"a0": unit(1, 0, 0), "b0": unit(0, 1, 0), "a1": unit(1, 0.1, 0),  # alice, clearly
           "a2": unit(1, 0.98, 0.05),  # alice, but about as near bob
           "s1": unit(1, 1, 0.1), "s2": unit(0, 0, 1)}  # a stranger between the two; one far from both
    free = openset_report(emb, openset, Threshold(1.5, 2, 0.01))
    gapped = openset_report(emb, openset, Threshold(1.5, 2, 0.01, 0.1))
    assert free.at_default_tau["rank1"] == 1.0 and free.at_default_tau["fpir"] == 0.5
    assert gapped.at_default_tau["rank1"] == 0.5 and gapped.at_default_tau["fpir"] == 0.0
    assert gapped.rank1_closed_set == free.rank1_closed_set == 1.0  # who is nearest does not change
    assert all(np.isfinite(c["tau"]) for c in gapped.curve)
    json.dumps(gapped.as_dict(), allow_nan=False)
    everyone = openset_report(emb, openset, Threshold(1.5, 2, 0.01, 4.0))  # every face ambiguous
    assert everyone.curve == [] and everyone.at_fpir["0.01"]["rank1"] == 0.0
    json.dumps(everyone.as_dict(), allow_nan=False)
