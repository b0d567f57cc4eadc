"""enroll, verify, identify and gallery management, end to end through the installed command."""

from __future__ import annotations

import os
import sqlite3

import numpy as np
import pytest

from facecli.gallery import open_gallery
from facecli.models import pipeline_spec
from tests.helpers import empty_gallery, json_rows


@pytest.fixture
def enrolled(run, images):
    """A private gallery with obama.jpg enrolled as "obama"."""
    proc = run("enroll", "obama", str(images / "obama.jpg"))
    assert proc.returncode == 0, proc.stderr
    return run


def test_one_shot_identify_and_verify(enrolled, images):
    run = enrolled
    ok = run("identify", str(images / "obama2.jpg"), "--json")
    assert ok.returncode == 0, ok.stderr
    (row,) = json_rows(ok.stdout)
    assert row["name"] == "obama" and row["decision"] == "recognized" and row["distance"] < row["tau"]

    stranger = run("identify", str(images / "biden.jpg"), "--json")
    assert stranger.returncode == 1, stranger.stderr
    (row,) = json_rows(stranger.stdout)
    assert row["name"] is None and row["decision"] == "not recognized"
    assert row["candidate"] == "obama" and row["distance"] > row["tau"]  # how close it came

    assert run("verify", str(images / "obama.jpg"), str(images / "obama3.jpg")).returncode == 0
    assert run("verify", str(images / "obama.jpg"), str(images / "biden.jpg")).returncode == 1
    claim = run("verify", str(images / "biden.jpg"), "--claim", "obama", "--json")
    assert claim.returncode == 1
    (row,) = json_rows(claim.stdout)
    assert row["claim"] == "obama" and row["decision"] == "different" and row["same"] is False
    assert run("verify", str(images / "obama2.jpg"), "--claim", "obama").returncode == 0


def test_json_schema_of_identify_and_verify(enrolled, images):
    proc = enrolled("identify", str(images / "obama2.jpg"), "--json", "--top-k", "3")
    (row,) = json_rows(proc.stdout)
    assert set(row) >= {"file", "face", "box", "score", "landmarks", "name", "distance", "tau", "decision",
                        "candidate", "candidates"}
    assert row["file"] == str(images / "obama2.jpg") and row["face"] == 0 and len(row["box"]) == 4
    assert row["candidates"] == [{"name": "obama", "distance": row["distance"]}]
    proc = enrolled("verify", str(images / "obama.jpg"), str(images / "obama3.jpg"), "--json")
    (row,) = json_rows(proc.stdout)
    assert set(row) >= {"file", "face", "box", "other", "other_face", "distance", "tau", "same", "decision"}
    assert row["same"] is True and row["decision"] == "same" and 0 <= row["distance"] <= row["tau"]


def test_stdin_path_list_and_stdout_is_pure_json(enrolled, images):
    names = ["obama2.jpg", "biden.jpg", "obama3.jpg"]
    proc = enrolled("identify", "-", "--json", stdin="\n".join(str(images / n) for n in names) + "\n")
    assert proc.returncode == 0, proc.stderr
    rows = json_rows(proc.stdout)  # every stdout line parses
    assert [r["name"] for r in rows] == ["obama", None, "obama"]


def test_tau_option_changes_the_decision(enrolled, images):
    proc = enrolled("identify", str(images / "biden.jpg"), "--tau", "3.9", "--force", "--json")
    assert proc.returncode == 0 and json_rows(proc.stdout)[0]["name"] == "obama"
    loose = enrolled("identify", str(images / "biden.jpg"), "--tau", "3.9")  # every stranger would match
    assert loose.returncode == 2 and loose.stdout == ""
    assert loose.stderr.startswith("error: --tau 3.9: ") and "--force" in loose.stderr and loose.stderr.count("\n") == 1
    assert enrolled("identify", str(images / "biden.jpg"), "--tau", "5").returncode == 2


def test_enrolling_the_same_photo_twice_keeps_one_template(enrolled, images):
    proc = enrolled("enroll", "obama", str(images / "obama.jpg"), "--json")
    assert proc.returncode == 0 and json_rows(proc.stdout)[0]["status"] == "present"
    with open_gallery(enrolled.gallery) as g:
        assert g.stats()["templates"] == 1
    proc = enrolled("enroll", "obama", str(images / "obama2.jpg"))
    with open_gallery(enrolled.gallery) as g:
        assert [(p.name, p.templates) for p in g.persons()] == [("obama", 2)]
    assert (enrolled.gallery.stat().st_mode & 0o777) == 0o600


def test_several_faces_need_largest(run, side_by_side):
    proc = run("enroll", "pair", str(side_by_side))
    assert proc.returncode == 2 and "2 faces found" in proc.stderr and "--largest" in proc.stderr
    assert not run.gallery.exists()  # nothing to write: no gallery created
    assert run("enroll", "pair", str(side_by_side), "--largest").returncode == 0


def test_identify_names_every_face_of_a_group(run, images, side_by_side):
    assert run("enroll", "obama", str(images / "obama2.jpg")).returncode == 0
    assert run("enroll", "biden", str(images / "biden.jpg")).returncode == 0
    proc = run("identify", str(side_by_side), "--json")
    names = {r["name"] for r in json_rows(proc.stdout)}
    assert names == {"obama", "biden"}


def test_enroll_dir_with_subfolders_and_named_files(run, images, tmp_path):
    people = tmp_path / "people"
    (people / "barack").mkdir(parents=True)
    (people / "barack" / "a.jpg").symlink_to(images / "obama.jpg")
    (people / "barack" / "b.jpg").symlink_to(images / "obama2.jpg")
    (people / "joe_2.jpg").symlink_to(images / "biden.jpg")
    (people / "notes.txt").write_text("not a photo")
    (people / "barack" / "._a.jpg").write_bytes(b"\x00\x05\x16\x07" + bytes(200))  # macOS metadata: hidden
    (people / ".trash").mkdir()  # a hidden folder is not a person
    (people / ".trash" / "x.jpg").symlink_to(images / "obama3.jpg")
    proc = run("enroll", "--dir", str(people), "--json")
    assert proc.returncode == 0, proc.stderr
    assert sorted((r["name"], r["status"]) for r in json_rows(proc.stdout)) == [
        ("barack", "added"), ("barack", "added"), ("joe", "added")]
    listing = json_rows(run("gallery", "list", "--json").stdout)
    assert [(p["name"], p["templates"]) for p in listing] == [("barack", 2), ("joe", 1)]
    proc = run("identify", str(images / "obama3.jpg"), "--json")
    assert json_rows(proc.stdout)[0]["name"] == "barack"


def test_gallery_management(enrolled, images):
    run = enrolled
    show = json_rows(run("gallery", "show", "obama", "--json").stdout)
    assert show[0]["source"] == str(images / "obama.jpg") and len(show[0]["sha256"]) == 64
    assert run("gallery", "rename", "obama", "barack").returncode == 0
    assert json_rows(run("identify", str(images / "obama2.jpg"), "--json").stdout)[0]["name"] == "barack"
    stats = json_rows(run("gallery", "stats", "--json").stdout)[0]
    assert stats["persons"] == 1 and stats["templates"] == 1 and stats["model"] == "fusion"
    assert run("gallery", "remove", "barack").returncode == 0
    assert run("gallery", "list", "--json").stdout == ""
    assert run("gallery", "remove", "barack").returncode == 2


# -- bad input: one line naming the input, exit 2, no traceback, gallery unchanged -----
def _bad_inputs(images, tmp_path) -> dict[str, str]:
    data = (images / "obama.jpg").read_bytes()
    cases = {
        "missing": tmp_path / "missing.jpg",
        "empty": tmp_path / "empty.jpg",
        "truncated": tmp_path / "truncated.jpg",
        "text": tmp_path / "notes.jpg",
        "directory": tmp_path / "a-folder.jpg",
        "unreadable": tmp_path / "secret.jpg",
    }
    cases["empty"].write_bytes(b"")
    cases["truncated"].write_bytes(data[: len(data) // 2])
    cases["text"].write_text("this is not an image\n")
    cases["directory"].mkdir()
    cases["unreadable"].write_bytes(data)
    cases["unreadable"].chmod(0)
    return {k: str(v) for k, v in cases.items()}


BAD = ["missing", "empty", "truncated", "text", "directory", "unreadable"]


def _check_one_line(proc, subject: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and subject in lines[0], proc.stderr


@pytest.mark.parametrize("case", BAD)
def test_bad_photo_for_enroll_leaves_gallery_byte_identical(case, enrolled, images, tmp_path):
    if case == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads mode-000 files: cannot make an unreadable file here")
    path = _bad_inputs(images, tmp_path)[case]
    before = enrolled.gallery.read_bytes()
    _check_one_line(enrolled("enroll", "someone", path), path)
    assert enrolled.gallery.read_bytes() == before


def test_bad_photos_are_reported_and_the_others_still_processed(enrolled, images, tmp_path):
    bad = _bad_inputs(images, tmp_path)
    before = enrolled.gallery.read_bytes()
    paths = [bad[c] for c in BAD if c != "unreadable"] + [str(images / "obama2.jpg")]
    proc = enrolled("identify", *paths, "--json")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    rows = json_rows(proc.stdout)
    assert [r["decision"] for r in rows] == ["error"] * (len(paths) - 1) + ["recognized"]
    assert len(proc.stderr.strip().splitlines()) == len(paths) - 1
    for p in paths[:-1]:
        assert p in proc.stderr
    for case in ("missing", "truncated", "text"):
        _check_one_line(enrolled("verify", bad[case], str(images / "obama.jpg")), bad[case])
    assert enrolled.gallery.read_bytes() == before


def test_gallery_problems(run, images, tmp_path):
    photo = str(images / "obama2.jpg")
    proc = run("identify", photo)  # no gallery yet
    _check_one_line(proc, str(run.gallery))
    assert "enroll" in proc.stderr and not run.gallery.exists()

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(4096))
    before = garbage.read_bytes()
    for args in (["identify", photo], ["enroll", "x", photo], ["gallery", "list"]):
        proc = run(*args, "--gallery", str(garbage))
        _check_one_line(proc, str(garbage))
        assert "not a facecli gallery" in proc.stderr
    assert garbage.read_bytes() == before

    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    _check_one_line(run("identify", photo, "--gallery", str(foreign)), str(foreign))

    other_model = tmp_path / "sface.db"
    empty_gallery(other_model, "sface")
    proc = run("identify", photo, "--gallery", str(other_model), "--model", "facenet")
    _check_one_line(proc, str(other_model))
    assert "sface" in proc.stderr and "facenet" in proc.stderr


def test_unknown_claim_and_usage_errors(enrolled, images):
    proc = enrolled("verify", str(images / "obama2.jpg"), "--claim", "nobody")
    _check_one_line(proc, "nobody")
    assert enrolled("verify", str(images / "obama2.jpg")).returncode == 2
    assert enrolled("enroll", "onlyname").returncode == 2
    assert enrolled("identify").returncode == 2


def test_calibrated_tau_shrinks_as_the_gallery_grows(run):
    taus = []
    for k in (1, 10, 100, 1559, 100_000):
        proc = run("calibrate", "--fpir", "0.01", "--gallery-size", str(k), "--json")
        assert proc.returncode == 0, proc.stderr
        row = json_rows(proc.stdout)[0]
        assert row["gallery_size"] == k and row["fpir"] == 0.01
        taus.append(row["tau"])
    assert taus == sorted(taus, reverse=True) and len(set(taus)) == len(taus)
    assert 0 < taus[-1] < taus[0] < 1.5
    stricter = json_rows(run("calibrate", "--fpir", "0.001", "--gallery-size", "1559", "--json").stdout)[0]
    assert stricter["tau"] < taus[3]
    bad = run("calibrate", "--fpir", "1.5", "--gallery-size", "3")
    assert bad.returncode == 2 and "--fpir 1.5" in bad.stderr


def test_calibrate_uses_the_gallery_size_and_the_tau_it_prints_works(enrolled, images):
    row = json_rows(enrolled("calibrate", "--json").stdout)[0]
    assert row["gallery_size"] == 1
    ident = json_rows(enrolled("identify", str(images / "obama2.jpg"), str(images / "biden.jpg"),
                               "--tau", str(row["tau"]), "--json").stdout)
    assert [r["name"] for r in ident] == ["obama", None]


def test_identify_defaults_to_the_calibrated_tau_for_the_gallery_size(enrolled, images):
    run = enrolled
    (row,) = json_rows(run("identify", str(images / "obama2.jpg"), "--json").stdout)
    calibrated = json_rows(run("calibrate", "--json").stdout)[0]
    assert (row["gallery_size"], row["fpir"]) == (1, 0.01)
    assert row["tau"] == pytest.approx(calibrated["tau"], abs=1e-4)
    assert row["name"] == "obama"
    # a stricter target lowers tau; --tau overrides and says so
    (strict,) = json_rows(run("identify", str(images / "obama2.jpg"), "--fpir", "0.0001", "--json").stdout)
    assert strict["fpir"] == 0.0001 and strict["tau"] < row["tau"]
    (manual,) = json_rows(run("identify", str(images / "obama2.jpg"), "--tau", "0.3", "--json").stdout)
    assert (manual["tau"], manual["fpir"], manual["name"]) == (0.3, None, None)
    # more people enrolled: the same target gives a smaller tau
    assert run("enroll", "biden", str(images / "biden.jpg")).returncode == 0
    (two,) = json_rows(run("identify", str(images / "obama2.jpg"), "--json").stdout)
    assert two["gallery_size"] == 2 and two["tau"] < row["tau"]


def test_gallery_fpir_setting_is_used_and_shown(enrolled, images):
    run = enrolled
    before = json_rows(run("gallery", "stats", "--json").stdout)[0]
    assert before["fpir"] == 0.01 and before["persons"] == 1
    assert before["verify_tau"] == pipeline_spec(before["model"]).default_tau
    proc = run("gallery", "set", "--fpir", "0.001")
    assert proc.returncode == 0, proc.stderr
    after = json_rows(run("gallery", "stats", "--json").stdout)[0]
    assert after["fpir"] == 0.001 and after["identify_tau"] < before["identify_tau"]
    (row,) = json_rows(run("identify", str(images / "obama2.jpg"), "--json").stdout)
    assert (row["fpir"], row["tau"]) == (0.001, after["identify_tau"])
    (row,) = json_rows(run("identify", str(images / "obama2.jpg"), "--json", "--fpir", "0.01").stdout)
    assert row["tau"] == before["identify_tau"]  # the option beats the setting
    assert run("gallery", "set", "--reset").returncode == 0
    assert json_rows(run("gallery", "stats", "--json").stdout)[0]["fpir"] == 0.01
    bad = run("gallery", "set", "--fpir", "2")
    assert bad.returncode == 2 and "--fpir 2" in bad.stderr
    assert run("gallery", "set").returncode == 2


def test_faces_below_min_face_are_too_small_to_identify(enrolled, images):
    (row,) = json_rows(enrolled("identify", str(images / "obama2.jpg"), "--min-face", "5000", "--json").stdout)
    assert row["name"] is None and row["decision"] == "too small to identify" and row["candidate"] == "obama"
    proc = enrolled("identify", str(images / "obama2.jpg"), "--min-face", "5000")
    assert proc.returncode == 1 and "too small" in proc.stdout


def test_several_templates_are_matched_by_their_mean_or_the_nearest(run, images):
    assert run("enroll", "obama", str(images / "obama.jpg"), str(images / "obama3.jpg")).returncode == 0
    rows = json_rows(run("embed", *(str(images / n) for n in ("obama.jpg", "obama3.jpg", "obama2.jpg")),
                         "--json").stdout)
    a, b, probe = (np.array(r["embedding"]) for r in rows)
    mean = (a + b) / np.linalg.norm(a + b)
    (row,) = json_rows(run("identify", str(images / "obama2.jpg"), "--json").stdout)
    assert row["distance"] == pytest.approx(np.sum((probe - mean) ** 2), abs=2e-3)
    (best,) = json_rows(run("identify", str(images / "obama2.jpg"), "--templates", "best", "--json").stdout)
    assert best["distance"] == pytest.approx(min(np.sum((probe - a) ** 2), np.sum((probe - b) ** 2)), abs=2e-3)
    assert row["name"] == best["name"] == "obama" and row["distance"] != best["distance"]
    claim = json_rows(run("verify", str(images / "obama2.jpg"), "--claim", "obama", "--json").stdout)[0]
    assert claim["distance"] == pytest.approx(row["distance"], abs=2e-3)
    bad = run("identify", str(images / "obama2.jpg"), "--templates", "median")
    # a usage error that names the option, the value and the valid choices
    assert bad.returncode == 2 and all(w in bad.stderr for w in ("--templates", "median", "'mean'", "'best'"))
