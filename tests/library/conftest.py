"""The library level: the Python API and library modules on the real models, photos and databases."""

from __future__ import annotations

import pytest

# the PostgreSQL server and databases of the gallery contract suite (one server per module)
from tests.helpers.postgres import db, pg  # noqa: F401


@pytest.fixture(autouse=True)
def _models(_models_built: None) -> None:
    """Every test of this level needs the built models: the session stops at once, saying so, without them."""
