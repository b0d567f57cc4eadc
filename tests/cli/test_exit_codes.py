"""Hardening, exit codes and messages a script can trust (issue 15): an internal error in any command is one
line and exit 2; names and paths cannot drive the terminal; an unavailable GPU and a handful of pairs are one line.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import FACECLI, json_rows, one_line_error

# -- issue 15: exit codes a script can trust --------------------------------------------------------
_INJECT = """
import importlib, sys
target = importlib.import_module("facecli.{module}")
def boom(*args, **kwargs):
    raise RuntimeError("injected")
setattr(target{attr}, "{name}", boom)
from facecli.cli import main
sys.argv = ["facecli", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(("args", "where"), [
    (["detect", "{photo}"], "pipeline.Pipeline.run"),
    (["embed", "{photo}"], "pipeline.Pipeline.run"),
    (["enroll", "x", "{photo}"], "engine.Engine.enroll"),
    (["verify", "{photo}", "{photo}"], "matching.closest_pair"),
    (["identify", "{photo}"], "matching.identify"),
    (["cluster", "{photo}"], "clustering.cluster"),
    (["search", "{photo}"], "engine.Engine.search_each"),
    (["verify", "--video", "{video}", "--claim", "obama"], "door.watch_claim"),
    (["watch", "--video", "{video}"], "engine.Engine.watch"),
    (["calibrate", "--gallery-size", "5"], "calibration.tau_for"),
    (["gallery", "list"], "gallery.store.Gallery.persons"),
    (["gallery", "stats"], "gallery.store.Gallery.stats"),
    (["gallery", "check"], "gallery.store.Gallery.check"),
    (["gallery", "show", "obama"], "gallery.store.Gallery.templates_of"),
    (["gallery", "remove", "obama"], "gallery.store.Gallery.remove"),
    (["gallery", "set", "--fpir", "0.001"], "gallery.store.Gallery.set_fpir"),
    (["models", "list"], "models.status"),
    (["eval", "pairs", "--pairs", "{pairs}"], "evaluation.pairs.report"),
])
def test_an_internal_error_is_one_line_and_exit_2(args, where, run, images, tmp_path):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 64))
    writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.release()
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("".join(f"{images / a} {images / b} {s}\n" for a, b, s in [
        ("obama.jpg", "obama2.jpg", 1), ("obama.jpg", "obama3.jpg", 1), ("obama.jpg", "biden.jpg", 0),
        ("obama2.jpg", "biden.jpg", 0)]))
    values = {"photo": str(images / "obama2.jpg"), "video": str(video), "pairs": str(pairs)}
    module, *attrs = where.split(".")
    if module in ("gallery", "evaluation"):
        module, *attrs = f"{module}.{attrs[0]}", *attrs[1:]
    code = _INJECT.format(module=module, attr="".join(f".{a}" for a in attrs[:-1]), name=attrs[-1])
    env = dict(os.environ, FACECLI_GALLERY=str(run.gallery), FACECLI_DEVICE="cpu")
    proc = subprocess.run([str(Path(FACECLI).with_name("python")), "-c", code, *[a.format(**values) for a in args]],
                          env=env, capture_output=True, text=True, timeout=300)
    command = " ".join(args[:2] if args[0] in ("gallery", "models", "eval") else args[:1])
    one_line_error(proc, f"error: {command}: unexpected RuntimeError: injected")


def test_names_and_paths_cannot_drive_the_terminal(run, images, tmp_path):
    assert run("enroll", "evil\x1b[2J", str(images / "obama.jpg")).returncode == 2  # refused at the door
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    with sqlite3.connect(run.gallery) as conn:  # a name written by someone else's tool
        conn.execute("UPDATE persons SET name = ?", ("ev\x1b]0;pwned\x07il\nerror: forged",))
    listing = run("gallery", "list")
    assert listing.returncode == 0 and "\x1b" not in listing.stdout and "\\x1b]0;pwned" in listing.stdout
    assert "error: forged" not in listing.stdout.splitlines()[0] and "\\nerror: forged" in listing.stdout
    row = json_rows(run("gallery", "list", "--json").stdout)[0]
    assert row["name"] == "ev\x1b]0;pwned\x07il\nerror: forged"  # JSON keeps the data, escaped
    missing = tmp_path / "a\nerror: forged\x1b[31m.jpg"
    proc = run("detect", str(missing))
    one_line_error(proc, "\\nerror: forged\\x1b[31m")


def test_an_unavailable_gpu_is_one_line(run, images):
    from facecli.runtime import gpu_runtime_present

    if gpu_runtime_present():
        pytest.skip("this machine has CUDA: the GPU path is checked by bench/throughput.py")
    for device in ("cuda", "tensorrt"):
        proc = run("detect", str(images / "obama.jpg"), "--device", device)
        one_line_error(proc, f"--device {device}", "CUDA 13")
        assert "\x1b" not in proc.stderr


def test_eval_pairs_on_a_handful_of_pairs(run, images, tmp_path):
    four = tmp_path / "four.txt"
    four.write_text("obama.jpg obama2.jpg 1\nobama.jpg obama3.jpg 1\nobama.jpg biden.jpg 0\nobama2.jpg biden.jpg 0\n")
    for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"):
        (tmp_path / name).symlink_to(images / name)
    proc = run("eval", "pairs", "--pairs", str(four), "--json")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    assert "only 4 pairs" in proc.stderr
    (rep,) = json_rows(proc.stdout)
    figures = [rep[k] for k in ("accuracy", "accuracy_std", "tau", "val", "val_std", "far", "auc")]
    assert all(isinstance(v, (int, float)) and 0 <= v <= 4 for v in figures)
    three = tmp_path / "three.txt"
    three.write_text("obama.jpg obama2.jpg 1\nobama.jpg biden.jpg 0\nobama2.jpg biden.jpg 0\n")
    one_line_error(run("eval", "pairs", "--pairs", str(three)), "at least 2 same")
