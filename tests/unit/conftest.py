"""The unit level: pure functions on hand-made values or the photos, with no model and no database server.

Its tests must pass on a fresh checkout before ``make models`` (and in well under 30 s): they see an empty
models folder, so a test that loads a model by mistake fails here instead of passing where models exist.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="package", autouse=True)
def _no_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point FACECLI_MODELS at an empty folder for the whole level, then put it back."""
    before = os.environ.get("FACECLI_MODELS")
    os.environ["FACECLI_MODELS"] = str(tmp_path_factory.mktemp("no-models"))
    yield
    if before is None:
        del os.environ["FACECLI_MODELS"]
    else:
        os.environ["FACECLI_MODELS"] = before
