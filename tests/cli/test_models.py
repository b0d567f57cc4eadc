"""The manifest, sha256 verification, and refusal of missing or tampered models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import pytest

from facecli.models import DEFAULT_MODEL, manifest, models_dir, pipeline_spec, pipelines
from facecli.paths import MANIFEST
from facecli.sources import sha256_file

REQUIRED = {"file", "sha256", "source", "input", "preprocess", "license"}


def test_manifest_declares_source_checksums_and_preprocessing():
    specs = manifest()
    assert {"facenet", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet", "haar"} <= set(specs)
    raw = json.loads(MANIFEST.read_text())["models"]
    for name, entry in raw.items():
        assert set(entry) >= REQUIRED, name
        assert len(entry["sha256"]) == 64 and len(entry["source"]["sha256"]) == 64
        assert {"package", "version", "dist", "member"} <= set(entry["source"])
    facenet = specs["facenet"]
    assert facenet.input["size"] == [160, 160] and facenet.input["layout"] == "NHWC"
    assert facenet.preprocess == {"mean": 127.5, "std": 128.0}
    assert facenet.output["dim"] == 512 and 0 < pipeline_spec("facenet").default_tau < 4
    sface = specs["sface"]
    assert sface.input["size"] == [112, 112] and sface.input["layout"] == "NCHW" and sface.input["color"] == "RGB"
    assert sface.alignment["method"] == "five-point" and len(sface.alignment["template"]) == 5
    for p in pipelines().values():  # every --model names built models, a detector, a tau and its calibration
        assert set(p.components) <= set(specs) and p.detector in ("mtcnn", "yunet") and 0 < p.default_tau < 4
        assert len(p.impostor["p"]) == len(p.impostor["d"]) and p.impostor["d"] == sorted(p.impostor["d"])
    assert pipeline_spec(DEFAULT_MODEL).components == ["facenet-int8", "sface"]
    int8 = specs["facenet-int8"]  # built from the float model, calibrated on photos that are not LFW's
    assert int8.source["model"] == "facenet" and int8.build["calibration"] == "int8_calibration"
    assert {k: getattr(int8, k) for k in ("input", "preprocess", "alignment", "output")} == \
        {k: getattr(facenet, k) for k in ("input", "preprocess", "alignment", "output")}
    calibration = json.loads(MANIFEST.read_text())["int8_calibration"]
    assert calibration["package"] == "face-recognition" and calibration["per_face"] > 1
    assert all(f["member"].startswith("tests/test_images/") and len(f["landmarks"]) == 5 for f in calibration["faces"])
    assert facenet.build["requirements"] and facenet.alignment["margin"] == 32


def test_built_files_match_the_manifest():
    for spec in manifest().values():
        assert sha256_file(spec.path) == spec.sha256, spec.name


def test_models_list_reports_every_model_verified(run):
    proc = run("models", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {r["model"] for r in rows} == set(manifest())
    assert all(r["state"] == "ok" for r in rows)


def _model_copy(tmp_path: Path, tamper: str | None = None, drop: str | None = None) -> Path:
    """A models folder of links to the real files, with one file tampered or missing."""
    folder = tmp_path / "models"
    folder.mkdir()
    for spec in manifest().values():
        if spec.name == drop:
            continue
        if spec.name == tamper:
            data = bytearray(spec.path.read_bytes())
            data[len(data) // 2] ^= 0x01  # one flipped bit
            (folder / spec.file).write_bytes(bytes(data))
        else:
            (folder / spec.file).symlink_to(spec.path)
    return folder


def test_tampered_model_is_refused(run, tmp_path, images):
    folder = _model_copy(tmp_path, tamper="yunet")
    proc = run("detect", str(images / "obama.jpg"), env={"FACECLI_MODELS": str(folder)})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "yunet" in line and "sha256" in line and "facecli models build" in line
    listing = run("models", "list", "--json", env={"FACECLI_MODELS": str(folder)})
    states = {r["model"]: r["state"] for r in map(json.loads, listing.stdout.splitlines())}
    assert states["yunet"] == "mismatch" and listing.returncode == 2


def test_missing_model_says_how_to_build_it(run, tmp_path, images):
    folder = _model_copy(tmp_path, drop=pipeline_spec(DEFAULT_MODEL).components[0])
    proc = run("embed", str(images / "obama.jpg"), env={"FACECLI_MODELS": str(folder)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "missing" in proc.stderr and "facecli models build" in proc.stderr


def test_models_live_in_facecli_models_else_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("FACECLI_MODELS", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert models_dir() == tmp_path / "mine"
    monkeypatch.delenv("FACECLI_MODELS")
    assert models_dir() == tmp_path / "data" / "facecli" / "models"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert models_dir() == tmp_path / ".local" / "share" / "facecli" / "models"
    assert manifest()["facenet"].path.parent == models_dir()


@pytest.fixture(scope="module")
def video(images: Path, tmp_path_factory) -> Path:
    """Five frames of obama.jpg as an MP4."""
    frame = cv2.resize(cv2.imread(str(images / "obama.jpg")), (320, 240))
    path = tmp_path_factory.mktemp("video") / "obama.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (320, 240))
    for _ in range(5):
        writer.write(frame)
    writer.release()
    return path


@pytest.mark.parametrize("command", [
    "detect {a}", "embed {a}", "enroll alice {a}", "verify {a} {b}", "verify {a} --claim obama",
    "identify {a}", "identify {a} {b} --json", "search {a}", "cluster {dir}", "watch --video {video}",
])
def test_every_command_needing_a_missing_model_says_how_to_build_it(run, tmp_path, images, video, command):
    """Exit 2 and one line naming `facecli models build`, before any work and with the gallery untouched."""
    args = command.format(a=images / "obama2.jpg", b=images / "biden.jpg", dir=images, video=video).split()
    empty = tmp_path / "no-models"
    empty.mkdir()
    proc = run(*args, env={"FACECLI_MODELS": str(empty)})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert str(empty) in proc.stderr and "is missing; run `facecli models build`" in proc.stderr
    assert not run.gallery.exists()


def test_gallery_file_permissions_do_not_depend_on_umask(run, images):
    old = os.umask(0)
    try:
        proc = run("enroll", "obama", str(images / "obama.jpg"))
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    assert (run.gallery.stat().st_mode & 0o777) == 0o600
