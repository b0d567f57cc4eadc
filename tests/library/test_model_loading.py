"""Model files as the library loads them (issue 24): onnxruntime gets the checked bytes, never a path, and a build
environment in a cache others can change is never run."""

from __future__ import annotations

import pytest

from facecli.errors import ModelError


def test_a_build_environment_in_a_cache_others_can_write_is_never_run(tmp_path, monkeypatch):
    from facecli import models

    cache = tmp_path / "cache"
    python = cache / "build-venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    marker = tmp_path / "ran"
    python.write_text(f"#!/bin/sh\ntouch {marker}\n")
    python.chmod(0o755)
    (cache / "build-venv" / "facecli-requirements.txt").write_text("tf2onnx==1.17.0")
    cache.chmod(0o777)
    monkeypatch.setenv("FACECLI_CACHE", str(cache))
    with pytest.raises(ModelError, match="can be changed by others"):
        models._build_python(["tf2onnx==1.17.0"], lambda _m: None)
    assert not marker.exists()


def test_onnxruntime_is_handed_the_checked_bytes_never_a_path(images, tmp_path, monkeypatch):
    """A model swapped on disk between facecli's check and onnxruntime's load was used: now onnxruntime reads no
    file, it gets the bytes facecli hashed (every model of the default pipeline and of MTCNN, optimised or not)."""
    import onnxruntime

    import facecli

    given = []
    real = onnxruntime.InferenceSession

    class Recording(real):  # the real session, recording what it was handed
        def __init__(self, source, *args, **kwargs):
            given.append(type(source))
            super().__init__(source, *args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", Recording)
    for cache in ("first", "first", "second"):  # optimised copies written, then read back; then a fresh cache
        monkeypatch.setenv("FACECLI_CACHE", str(tmp_path / cache))
        facecli.load(device="cpu").faces(images / "obama.jpg")
        facecli.load(device="cpu", detector="mtcnn", model="facenet").faces(images / "obama.jpg")
    assert given and set(given) == {bytes}
