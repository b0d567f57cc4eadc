"""The cli level: the installed `facecli` command, run in a subprocess on the real models and photos."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _models(_models_built: None) -> None:
    """Every test of this level needs the built models: the session stops at once, saying so, without them."""


# the PostgreSQL server and databases of this level's test_postgres*.py modules (one server per module)
from tests.helpers.postgres import db, pg  # noqa: E402, F401
