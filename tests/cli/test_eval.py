"""LFW evaluation: the fold logic on a hand-computed example, and the real pipeline on an LFW subset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facecli.evaluation import kfold_accuracy, read_lfw_pairs, report, roc_auc

LFW = Path(__file__).resolve().parents[2] / "shared" / "lfw"


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


def test_lfw_subset_accuracy_with_the_real_model(run, tmp_path):
    if not LFW.exists():
        pytest.skip(f"{LFW} is absent (the shared LFW benchmark)")
    lines = (LFW / "pairs.txt").read_text().splitlines()
    subset = ["10\t30"]
    for k in range(10):
        block = lines[1 + 600 * k: 1 + 600 * (k + 1)]
        subset += block[:30] + block[300:330]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(subset) + "\n")
    proc = run("eval", "lfw", "--pairs", str(pairs), "--images", str(LFW / "images"), "--json",
               env={"FACECLI_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["pairs"] == 600 and len(rep["fold_tau"]) == 10
    assert rep["accuracy"] >= 0.97, rep
    assert 0.5 < rep["tau"] < 1.6 and rep["auc"] > 0.99
    assert rep["fallbacks"] < 5  # deep-funneled LFW: MTCNN finds nearly every face


def test_user_pairs_count_the_centre_crop_fallback(run, images, no_face, tmp_path):
    pairs = tmp_path / "mine.txt"
    rows = [("obama.jpg", "obama2.jpg", 1), ("obama.jpg", "obama3.jpg", 1), ("obama2.jpg", "obama3.jpg", 1),
            ("obama.jpg", "biden.jpg", 0), ("obama2.jpg", "biden.jpg", 0), ("obama3.jpg", "biden.jpg", 0)]
    text = "".join(f"{images / a}\t{images / b}\t{s}\n" for a, b, s in rows)
    pairs.write_text(text + f"{no_face}\t{images / 'biden.jpg'}\t0\n")
    proc = run("eval", "pairs", "--pairs", str(pairs), "--json", env={"FACECLI_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["pairs"] == 7 and rep["images"] == 5 and rep["fallbacks"] == 1
    assert rep["tau_accuracy"] == 1.0  # these photos separate perfectly at the best tau


def test_bad_pairs_file(run, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("a.jpg b.jpg maybe\n")
    proc = run("eval", "pairs", "--pairs", str(bad))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and str(bad) in proc.stderr


def test_tau_at_fpir_admits_at_most_that_share_of_strangers():
    from facecli.evaluation.openset import tau_at_fpir

    strangers = np.array([0.9, 1.2, 1.0, 1.5] * 25)  # 100 strangers
    for fpir in (0.0, 0.01, 0.25, 0.3, 0.5):
        tau = tau_at_fpir(strangers, fpir)
        assert np.mean(strangers <= tau) <= fpir
    assert tau_at_fpir(strangers, 0.25) >= 0.9 and tau_at_fpir(strangers, 0.5) >= 1.0


def test_openset_on_an_lfw_subset(run, tmp_path):
    if not LFW.exists():
        pytest.skip(f"{LFW} is absent (the shared LFW benchmark)")
    people = sorted(p for p in (LFW / "images").iterdir() if p.is_dir())
    many = [p for p in people if len(list(p.iterdir())) >= 3][:30]
    single = [p for p in people if len(list(p.iterdir())) == 1][:30]
    root = tmp_path / "people"
    for person in many + single:
        (root / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:3]:
            (root / person.name / photo.name).symlink_to(photo)
    plot = tmp_path / "det.png"
    proc = run("eval", "openset", "--images", str(root), "--json", *(["--plot", str(plot)] if _has_mpl() else []))
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert (rep["enrolled"], rep["probes"], rep["strangers"]) == (30, 60, 30)
    assert rep["rank1_closed_set"] >= 0.85
    strict, default = rep["at_fpir"]["0.01"], rep["at_default_tau"]
    assert strict["fpir"] <= 0.01 and default["fpir_target"] == 0.01
    calibrated = json.loads(run("calibrate", "--gallery-size", "30", "--json").stdout)["tau"]
    assert default["tau"] == pytest.approx(calibrated, abs=1e-4)  # what identify would use for 30 people
    fixed = json.loads(run("eval", "openset", "--images", str(root), "--json", "--tau", "1.26").stdout)
    assert fixed["at_default_tau"]["fpir_target"] is None and fixed["at_default_tau"]["fpir"] >= strict["fpir"]
    curve = rep["curve"]
    taus = [c["tau"] for c in curve]
    assert taus == sorted(taus)
    assert all(a["fpir"] <= b["fpir"] and a["fnir"] >= b["fnir"] for a, b in zip(curve, curve[1:]))
    if _has_mpl():
        assert plot.stat().st_size > 10_000

    # a random sub-gallery keeps its people's probes and all strangers; two templates, best-of or mean
    sub = json.loads(run("eval", "openset", "--images", str(root), "--json", "--gallery-size", "10").stdout)
    assert (sub["enrolled"], sub["probes"], sub["strangers"], sub["seed"]) == (10, 20, 30, 0)
    other = json.loads(run("eval", "openset", "--images", str(root), "--json", "--gallery-size", "10",
                           "--seed", "1").stdout)
    assert other["at_default_tau"]["tau"] == sub["at_default_tau"]["tau"] > default["tau"]
    for mode in ("best", "mean"):
        two = json.loads(run("eval", "openset", "--images", str(root), "--json", "--enroll", "2",
                             "--templates", mode).stdout)
        assert (two["enrolled"], two["probes"], two["templates"]) == (30, 30, mode)
        assert two["rank1_closed_set"] >= 0.85
    assert run("eval", "openset", "--images", str(root), "--templates", "median").returncode == 2
    assert run("eval", "openset", "--images", str(root), "--gallery-size", "31").returncode == 2


def _has_mpl() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None
