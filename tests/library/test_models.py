"""The built model files match the manifest's sha256."""

from __future__ import annotations

from facecli.models import manifest
from facecli.sources import sha256_file


def test_built_files_match_the_manifest():
    for spec in manifest().values():
        assert sha256_file(spec.path) == spec.sha256, spec.name
