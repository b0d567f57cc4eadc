"""facecli tune and --head through the command: settings refused by name, the command end to end on LFW
photos, a head used by the matching commands and recorded by the gallery.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import facecli
from facecli.errors import FaceCliError, HeadMismatch
from facecli.gallery import open_gallery
from facecli.heads import load_head, sidecar
from facecli.modes import HEADS, LOSSES, MININGS
from facecli.tune import Labelled, TuneConfig, train_head
from facecli.values import Threshold
from tests.helpers import heads, json_rows, one_line_error


@pytest.fixture(scope="module")
def lfw_slice() -> Labelled:
    """SFace embeddings (the evaluation's, cached) of 24 LFW people with 4+ photos and 16 with one."""
    return heads.lfw_slice("sface")


def test_library_settings_are_refused_by_value_and_the_command_names_the_option(lfw_slice, run, tmp_path):
    with pytest.raises(FaceCliError) as err:
        train_head(lfw_slice, TuneConfig(loss="hinge"))
    assert (err.value.setting, err.value.value) == ("loss", "hinge")  # a value, never a flag
    folder = tmp_path / "people"
    folder.mkdir()
    proc = run("tune", str(folder), "--out", str(tmp_path / "h.onnx"), "--val-fraction", "1.5")
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --val-fraction 1.5: must be between 0 and 1"
    text = " ".join(run("tune", "--help", env={"COLUMNS": "400"}).stdout.split())  # the library's choices
    for values in (HEADS, LOSSES, MININGS):
        assert "<" + "|".join(values) + ">" in text
    assert f"[default: {TuneConfig.epochs}]" in text and f"[default: {TuneConfig.people_per_batch}]" in text


# -- the command, end to end on real photos ------------------------------------------------------------
@pytest.fixture(scope="module")
def people_dir(tmp_path_factory) -> Path:
    """`enroll --dir`'s layout: 12 LFW people (4 photos each) not in ``lfw_slice``, and 4 with one photo."""
    root = tmp_path_factory.mktemp("people")
    for photo in heads.lfw_people(12, 4, per_person=4, skip=24):
        (root / photo.parent.name).mkdir(exist_ok=True)
        (root / photo.parent.name / photo.name).symlink_to(photo)
    return root


def _tune(run, people: Path, out: Path, *extra: str):
    return run("tune", str(people), "--out", str(out), "--model", "sface", "--largest", "--epochs", "4",
               "--people-per-batch", "8", "--learning-rate", "2e-3", "--json", *extra)


def test_tune_writes_a_head_deterministically(run, people_dir, tmp_path):
    a = _tune(run, people_dir, tmp_path / "a.onnx")
    assert a.returncode == 0, a.stderr
    (row,) = json_rows(a.stdout)
    data = (tmp_path / "a.onnx").read_bytes()
    assert row["sha256"] == hashlib.sha256(data).hexdigest() == sidecar(tmp_path / "a.onnx").read_text().split()[0]
    assert (row["base_model"], row["head"], row["input_dim"], row["output_dim"]) == ("sface", "linear", 128, 128)
    assert (row["loss"], row["margin"], row["mining"], row["skipped"]) == ("triplet", 0.2, "semi-hard", 0)
    assert (row["train_people"], row["val_people"]) == (12, 4)  # a quarter of each kind of person
    assert row["train_images"] + row["val_images"] == 52
    assert [h["epoch"] for h in row["history"]] == list(range(row["epochs_run"] + 1))
    assert set(row["validation"]["head"]["at_fpir"]) == {"0.01", "0.001"}
    head = load_head(tmp_path / "a.onnx")
    assert head.metadata["dataset_sha256"] == row["dataset_sha256"] and head.base_model == "sface"

    again = _tune(run, people_dir, tmp_path / "b.onnx")  # same folder, same seed: the same file
    assert json_rows(again.stdout)[0]["sha256"] == row["sha256"]
    assert (tmp_path / "b.onnx").read_bytes() == data
    other = _tune(run, people_dir, tmp_path / "c.onnx", "--seed", "1")
    assert json_rows(other.stdout)[0]["sha256"] != row["sha256"]


# -- a head in use: galleries record it, matching goes through it ---------------------------------------
@pytest.fixture(scope="module")
def head_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("heads")
    found = heads.write_head(folder, "head.onnx", seed=0), heads.write_head(folder, "other.onnx", seed=3)
    assert all(load_head(h).metadata["epochs"] > 0 for h in found)  # trained: not their starting point
    return found


def test_a_head_does_not_change_a_gallery_not_told_to_use_it(run, images, head_files):
    head, _ = head_files
    photos = [str(images / n) for n in ("obama2.jpg", "biden.jpg", "obama3.jpg")]
    assert run("enroll", "obama", str(images / "obama.jpg"), "--model", "sface").returncode == 0
    before = run("identify", *photos, "--json")
    heads.write_head(head.parent, "late.onnx", seed=2)  # another head trained meanwhile, on other people
    after = run("identify", *photos, "--json")
    assert after.returncode == before.returncode == 0 and after.stdout == before.stdout
    one_line_error(run("identify", *photos, "--head", str(head)), "used without a head", "gallery set --head")

    tuned = facecli.load(device="cpu", head=head)  # the model comes from the head
    assert (tuned.model, tuned.head.sha256) == ("sface", load_head(head).sha256)
    faces = tuned.faces(images / "obama2.jpg")
    with open_gallery(run.gallery) as g, pytest.raises(HeadMismatch):
        tuned.identify_faces(g, faces)


def test_a_gallery_set_to_use_a_head_keeps_it_and_uses_it_without_head(run, images, head_files, tmp_path):
    mine, other = tmp_path / "head.onnx", head_files[1]
    shutil.copy(head_files[0], mine)
    shutil.copy(sidecar(head_files[0]), sidecar(mine))
    loaded = load_head(mine)
    img = {n: str(images / n) for n in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")}
    assert run("enroll", "obama", img["obama.jpg"], "--model", "sface").returncode == 0
    assert run("enroll", "biden", img["biden.jpg"]).returncode == 0
    base = run("identify", img["obama2.jpg"], img["obama3.jpg"], img["biden.jpg"], "--json")

    done = run("gallery", "set", "--head", str(mine))
    assert done.returncode == 0 and done.stdout == "" and "kept in the gallery" in done.stderr
    # a head tuned with ten validation people calibrates identify for no gallery (bench/ACCURACY.md, "Issue 27")
    reach = "calibrated for galleries of up to 0 people"
    assert reach in done.stderr and "identify needs --tau" in done.stderr
    mine.unlink()  # the gallery keeps its own copy: the file is no longer needed
    sidecar(mine).unlink()
    (stats,) = json_rows(run("gallery", "stats", "--json").stdout)
    assert (stats["head"], stats["head_sha256"], stats["head_kept"]) == (str(mine), loaded.sha256, True)
    assert stats["identify_tau"] is None and stats["verify_tau"] == loaded.default_tau

    # every matching command uses the gallery's head without --head (its calibration, its distances); another
    # head is refused in one line
    one_line_error(run("identify", img["obama2.jpg"]), reach, "give a tau")
    one_line_error(run("calibrate"), reach)
    found = run("identify", img["obama2.jpg"], img["biden.jpg"], "--tau", "1.0", "--json")
    rows = json_rows(found.stdout)
    assert found.returncode == 0 and [r["name"] for r in rows] == ["obama", "biden"]
    assert {r["tau"] for r in rows} == {1.0} and {r["gallery_size"] for r in rows} == {2}
    one_line_error(run("identify", img["obama2.jpg"], "--head", str(other), "--tau", "1.0"), "kept in it",
                   "drop --head")
    tuned = facecli.load(device="cpu", head=head_files[0])
    probe = tuned.faces(images / "obama2.jpg")[0]
    with open_gallery(run.gallery) as g:
        stored = g.embeddings_of("obama")
        with pytest.raises(HeadMismatch, match="gallery="):  # an engine without the gallery's head is refused
            facecli.load(device="cpu", model="sface").identify_faces(g, [probe], Threshold(1.0))
        engine = facecli.load(device="cpu", gallery=g)  # the gallery's model and head
        assert (engine.model, engine.head.sha256) == ("sface", loaded.sha256) and engine.head.kept_in == g.location
        (decided,) = engine.identify_faces(g, [probe], Threshold(1.0))
        assert decided.distance == pytest.approx(rows[0]["distance"], abs=1e-4)
    expected = float(np.sum((loaded.apply(probe.embedding) - loaded.apply(stored)) ** 2))
    assert rows[0]["distance"] == pytest.approx(expected, abs=2e-4)
    assert abs(expected - float(np.sum((probe.embedding - stored) ** 2))) > 1e-3  # the head changed it

    claim = json_rows(run("verify", img["obama3.jpg"], "--claim", "obama", "--json").stdout)
    pair = json_rows(run("verify", img["obama.jpg"], img["obama2.jpg"], "--head", str(head_files[0]),
                         "--json").stdout)
    assert claim[0]["tau"] == pair[0]["tau"] == loaded.default_tau and claim[0]["same"] and pair[0]["same"]
    assert json_rows(run("search", img["obama3.jpg"], "--json").stdout)[0]["name"] == "obama"
    assert run("enroll", "carol", img["obama3.jpg"]).returncode == 0  # through the head, with no --head
    assert run("gallery", "remove", "carol").returncode == 0
    one_line_error(run("identify", img["obama2.jpg"], "--search", "index", "--tau", "1.0"), "searched exactly")
    (row,) = json_rows(run("embed", img["obama2.jpg"], "--head", str(head_files[0]), "--json").stdout)
    assert row["head"] == loaded.sha256 and len(row["embedding"]) == loaded.out_dim
    assert np.allclose(row["embedding"], loaded.apply(probe.embedding)[0], atol=1e-5)

    # removing the head needs no re-enrollment: the base embeddings were kept, and the base decisions return
    assert run("gallery", "set", "--no-head").returncode == 0
    again = run("identify", img["obama2.jpg"], img["obama3.jpg"], img["biden.jpg"], "--json")
    assert (again.returncode, again.stdout) == (base.returncode, base.stdout)
    assert json_rows(run("gallery", "stats", "--json").stdout)[0]["head"] is None
    with sqlite3.connect(run.gallery) as conn:  # and its copy is forgotten
        assert conn.execute("SELECT COUNT(*) FROM heads").fetchone() == (0,)


def test_a_head_an_older_facecli_recorded_is_read_from_its_path(run, images, head_files, tmp_path):
    mine = tmp_path / "mine.onnx"
    shutil.copy(head_files[0], mine)
    shutil.copy(sidecar(head_files[0]), sidecar(mine))
    assert run("enroll", "obama", str(images / "obama.jpg"), "--model", "sface").returncode == 0
    assert run("gallery", "set", "--head", str(mine)).returncode == 0
    with sqlite3.connect(run.gallery) as conn:  # as an older facecli left it: the head recorded, not kept
        conn.execute("DELETE FROM heads")
    assert json_rows(run("gallery", "stats", "--json").stdout)[0]["head_kept"] is False
    photo = str(images / "obama2.jpg")
    found = run("identify", photo, "--tau", "1.0", "--json")  # the file at the recorded path, checked
    assert found.returncode == 0 and json_rows(found.stdout)[0]["name"] == "obama"
    mine.unlink()
    one_line_error(run("identify", photo, "--tau", "1.0"), "cannot read now", "gallery set --head FILE")
    shutil.copy(head_files[0], mine)  # keeping it mends that for good
    assert run("gallery", "set", "--head", str(mine)).returncode == 0
    mine.unlink()
    assert run("identify", photo, "--tau", "1.0").returncode == 0


def test_a_changed_head_file_is_refused(run, images, head_files, tmp_path):
    head, other = head_files
    mine = tmp_path / "mine.onnx"
    shutil.copy(head, mine)
    shutil.copy(sidecar(head), sidecar(mine))
    assert run("enroll", "obama", str(images / "obama.jpg"), "--head", str(mine)).returncode == 0  # records it
    assert json_rows(run("gallery", "stats", "--json").stdout)[0]["head"] == str(mine)

    data = bytearray(mine.read_bytes())
    data[len(data) // 2] ^= 1  # one bit of a weight
    mine.write_bytes(bytes(data))
    one_line_error(run("identify", str(images / "obama2.jpg"), "--head", str(mine)), "has sha256", "expected")
    # another head, with its own sha256 beside it: sound as a file, but not the head the gallery records
    shutil.copy(other, mine)
    shutil.copy(sidecar(other), sidecar(mine))
    one_line_error(run("identify", str(images / "obama2.jpg"), "--head", str(mine)), "used with the head")
    # a damaged record is reported by gallery check, and matching refuses it
    with sqlite3.connect(run.gallery) as conn:
        conn.execute("UPDATE meta SET value = 'not a sha256' WHERE key = 'head_sha256'")
    check = run("gallery", "check", "--json")
    assert check.returncode == 1 and "head_sha256" in json_rows(check.stdout)[0]["problems"][0]
    one_line_error(run("identify", str(images / "obama2.jpg")), "head record", "gallery check")
