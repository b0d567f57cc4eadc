"""`--min-gap`: a face about as near to two enrolled people is `ambiguous`, never named (real photos, the real
models, a private gallery): identify, find and people decide alike, and the default comes from the model's
manifest."""

from __future__ import annotations

from pathlib import Path

from facecli import decisions
from facecli.gallery import identification, open_gallery
from facecli.library import cluster_unnamed
from tests.helpers import json_rows


def _twice_enrolled(run, images) -> None:
    """One man enrolled under two names, from two photos: a third photo of him lies near both."""
    assert run("enroll", "obama", str(images / "obama.jpg"), "--quiet").returncode == 0
    assert run("enroll", "barack", str(images / "obama2.jpg"), "--quiet").returncode == 0


def test_a_face_near_two_people_is_ambiguous_under_the_gap_and_named_over_it(run, images):
    _twice_enrolled(run, images)
    probe = str(images / "obama3.jpg")
    (free,) = json_rows(run("identify", probe, "--json", "--top-k", "2", "--min-gap", "0").stdout)
    first, second = free["candidates"]
    lead = second["distance"] - first["distance"]
    assert free["decision"] == "recognized" and free["name"] == first["name"] and free["min_gap"] == 0
    assert {first["name"], second["name"]} == {"obama", "barack"} and second["distance"] <= free["tau"]

    proc = run("identify", probe, "--json", "--min-gap", f"{lead + 0.01:.4f}")
    (row,) = json_rows(proc.stdout)
    assert proc.returncode == 1, proc.stderr  # nobody named, as for "not recognized"
    assert row["decision"] == "ambiguous" and row["name"] is None
    assert row["candidate"] == first["name"] and row["distance"] == first["distance"]  # the evidence is kept
    (named,) = json_rows(run("identify", probe, "--json", "--min-gap", f"{lead / 2:.4f}").stdout)
    assert named["decision"] == "recognized" and named["name"] == first["name"]

    table = run("identify", probe, "--min-gap", "4")
    assert table.returncode == 1 and "ambiguous" in table.stdout
    bad = run("identify", probe, "--min-gap", "-1")
    assert bad.returncode == 2 and "--min-gap" in bad.stderr and "Traceback" not in bad.stderr


def test_the_default_gap_is_the_models_and_a_lone_person_is_never_ambiguous(run, images):
    assert run("enroll", "obama", str(images / "obama.jpg"), "--quiet").returncode == 0
    (alone,) = json_rows(run("identify", str(images / "obama2.jpg"), "--json", "--min-gap", "4").stdout)
    assert alone["decision"] == "recognized"  # no runner-up: no ambiguity
    assert run("enroll", "biden", str(images / "biden.jpg"), "--quiet").returncode == 0
    (row,) = json_rows(run("identify", str(images / "obama2.jpg"), "--json").stdout)
    assert row["min_gap"] == decisions.min_gap("fusion") > 0 and row["name"] == "obama"
    assert decisions.min_gap("facenet") == 0  # not measured for it: no rule


def test_find_and_people_decide_as_identify_does(run, library, images):
    run("index", str(library), "--quiet")
    _twice_enrolled(run, images)
    rows = json_rows(run("identify", str(library), "--json", "--top-k", "2", "--min-gap", "0").stdout)
    leads = sorted(r["candidates"][1]["distance"] - r["distance"] for r in rows if r["name"] in ("obama", "barack"))
    middle = (leads[0] + leads[-1]) / 2  # some of his faces named, some ambiguous
    for gap in ("0", f"{middle:.4f}", "4"):
        found = {(Path(r["file"]).name, r["face"]) for name in ("obama", "barack")
                 for r in json_rows(run("find", name, "--json", "--min-gap", gap).stdout)}
        identified = json_rows(run("identify", str(library), "--json", "--min-gap", gap).stdout)
        assert found == {(Path(r["file"]).name, r["face"]) for r in identified if r["name"] in ("obama", "barack")}
        expected = {"0": len(leads), "4": 0}.get(gap)
        assert 0 < len(found) < len(leads) if expected is None else len(found) == expected

    # `people --unnamed` clusters only the faces nobody enrolled is near: an ambiguous face is not someone new
    biden = [r for r in rows if r["name"] is None]
    unnamed = json_rows(run("people", "--unnamed", "--min-size", "1", "--json").stdout)
    assert sum(r["faces"] for r in unnamed) == len(biden) == 2
    with open_gallery(run.gallery, write=True) as g:  # every face of his ambiguous: a gap of 4
        clusters = cluster_unnamed(g, threshold=identification.threshold(g, gap=4.0))
    assert sum(len(c.faces) for c in clusters) == len(biden)
