"""Model files are code onnxruntime runs (issue 24): the bytes checked are the bytes loaded, a cache others can
change vouches for nothing, and building never writes through a link planted in the models folder."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from facecli.models import manifest
from facecli.stamps import file_stamp
from tests.helpers import one_line_error


def _models(tmp_path: Path, own: str) -> Path:
    """A models folder with its own copy of model ``own`` (links to the built files for the others)."""
    folder = tmp_path / "models"
    folder.mkdir()
    for spec in manifest().values():
        if spec.name == own:
            (folder / spec.file).write_bytes(spec.path.read_bytes())
        else:
            (folder / spec.file).symlink_to(spec.path)
    return folder


def test_a_stamp_in_a_cache_others_can_write_vouches_for_nothing(run, tmp_path, images):
    folder = _models(tmp_path, "yunet")
    target = folder / manifest()["yunet"].file
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 1
    target.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)  # anyone may write here: the stamp below could be anyone's
    forged = {str(target.resolve()): [*file_stamp(target.resolve()), manifest()["yunet"].sha256]}
    (cache / "verified-models.json").write_text(json.dumps(forged))
    proc = run("detect", str(images / "obama.jpg"), env={"FACECLI_MODELS": str(folder), "FACECLI_CACHE": str(cache)})
    one_line_error(proc, "yunet", "sha256")


def test_a_model_path_that_is_no_file_is_refused_at_once(run, tmp_path, images):
    folder = _models(tmp_path, "mtcnn-onet")
    target = folder / manifest()["mtcnn-onet"].file
    target.unlink()
    os.mkfifo(target)  # reading it would block forever
    start = time.monotonic()
    proc = run("detect", str(images / "obama.jpg"), "--detector", "mtcnn", env={"FACECLI_MODELS": str(folder)})
    one_line_error(proc, str(target), "not a regular file")
    assert time.monotonic() - start < 60


def test_models_build_never_writes_through_a_planted_link(run, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = _models(tmp_path, "yunet")
    haar = folder / manifest()["haar"].file
    haar.unlink()
    haar.symlink_to(victim)
    proc = run("models", "build", env={"FACECLI_MODELS": str(folder)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr  # the build says what it does, then stops:
    assert proc.stderr.splitlines()[-1] == f"error: {haar}: is a symbolic link: refusing to replace it"
    assert victim.read_text() == "precious"
