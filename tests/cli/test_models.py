"""The models through the command: listing them verified, and refusing missing or tampered models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import pytest

from facecli.models import DEFAULT_MODEL, manifest, pipeline_spec


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
