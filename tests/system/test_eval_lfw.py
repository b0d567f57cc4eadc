"""LFW evaluation end to end: the real pipeline on an LFW subset, verification and open-set."""

from __future__ import annotations

import json

import pytest

from tests.helpers import ROOT

LFW = ROOT.parent / "shared" / "lfw"


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
    # identify's gap rule: a face ambiguous under --min-gap is named at no tau (4: every face is)
    none = json.loads(run("eval", "openset", "--images", str(root), "--json", "--min-gap", "4").stdout)
    assert none["at_default_tau"]["rank1"] == 0 and none["at_default_tau"]["fpir"] == 0 and none["curve"] == []
    assert none["rank1_closed_set"] == rep["rank1_closed_set"]  # who is nearest does not change
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
