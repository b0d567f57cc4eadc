"""The built model files match the manifest's sha256."""

from __future__ import annotations

from facecli.models import manifest
from facecli.sources import sha256_file


def test_built_files_match_the_manifest():
    for spec in manifest().values():
        assert sha256_file(spec.path) == spec.sha256, spec.name


def test_a_conversion_leaves_nothing_in_the_home_folder(tmp_path, monkeypatch):
    """TensorFlow's Keras writes ~/.keras/keras.json when imported; a build must not leave it behind."""
    import pytest

    from facecli import models
    from facecli.paths import cache_dir

    if not (cache_dir() / "build-venv" / "facecli-requirements.txt").exists():
        pytest.skip("no build environment here (the models were copied, not converted)")
    monkeypatch.setenv("FACECLI_CACHE", str(cache_dir()))  # the same cache, whatever HOME says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FACECLI_MODELS", str(tmp_path / "models"))
    (tmp_path / "home").mkdir()
    spec = models.spec("face-blendshapes")
    models._convert(spec, lambda _m: None)
    assert sha256_file(spec.path) == spec.sha256
    assert list((tmp_path / "home").iterdir()) == []
