"""The gallery file's schema and its history: how each older version is brought up to date.

``PRAGMA user_version`` holds the schema version. A new gallery is created at
``SCHEMA_VERSION``; an older one is upgraded when it is opened for writing,
in one transaction (all steps or none), and each step is recorded in
``schema_history``. Reading needs no upgrade: every version listed in
``READABLE`` answers the queries facecli makes.

History:

1. ``meta``, ``persons``, ``templates`` (facecli 0.1).
2. ``schema_history``; an index on ``templates(sha256)``, so a photo already
   enrolled under any name is found without a scan.
"""

from __future__ import annotations

import sqlite3
import time
from functools import lru_cache

from facecli.version import __version__

SCHEMA_VERSION = 2
READABLE = range(1, SCHEMA_VERSION + 1)

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE persons (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);
CREATE TABLE templates (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    embedding BLOB NOT NULL,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    box TEXT NOT NULL,
    created REAL NOT NULL,
    UNIQUE (person_id, sha256)
);
CREATE INDEX templates_person ON templates(person_id);
"""

#: version -> the statements that bring version - 1 to it
STEPS: dict[int, str] = {
    2: """
CREATE TABLE schema_history (version INTEGER PRIMARY KEY, applied REAL NOT NULL, facecli TEXT NOT NULL);
CREATE INDEX templates_sha256 ON templates(sha256);
""",
}


def _statements(script: str) -> list[str]:
    return [s for s in script.split(";") if s.strip()]


def create(conn: sqlite3.Connection, version: int = SCHEMA_VERSION) -> None:
    """The schema as of ``version`` (default: the current one) in an empty database, in the caller's transaction."""
    for statement in _statements(_V1):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    upgrade(conn, 1, version)


def upgrade(conn: sqlite3.Connection, version: int, to: int = SCHEMA_VERSION) -> None:
    """Apply every step after ``version`` up to ``to`` (in the caller's transaction) and record each one."""
    for target in range(version + 1, to + 1):
        for statement in _statements(STEPS[target]):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_history VALUES (?, ?, ?)", (target, time.time(), __version__))
        conn.execute(f"PRAGMA user_version = {target}")



def _normal(sql: str | None) -> str:
    return " ".join((sql or "").split())


@lru_cache
def expected_objects(version: int) -> dict[tuple[str, str], str]:
    """(type, name) -> the CREATE statement of every schema object facecli makes at ``version``."""
    conn = sqlite3.connect(":memory:")
    try:
        create(conn, version)
        return {(t, n): _normal(sql) for t, n, sql in
                conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT GLOB 'sqlite_*'")}
    finally:
        conn.close()


def foreign_objects(conn: sqlite3.Connection, version: int) -> list[str]:
    """What the schema holds that facecli did not create at ``version`` (or lacks, or has changed): [] when none.

    A trigger that copies a chosen embedding into every new template, or a
    view named like a facecli table, would make strangers match; so would a
    table redefined with other defaults.
    """
    expected = expected_objects(version)
    found = {(t, n): _normal(sql) for t, n, sql in
             conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT GLOB 'sqlite_*'")}
    problems = [f"{t} {n} was not created by facecli" for (t, n) in sorted(found.keys() - expected.keys())]
    problems += [f"{t} {n} is missing" for (t, n) in sorted(expected.keys() - found.keys())]
    problems += [f"{t} {n} has been changed" for (t, n) in sorted(found.keys() & expected.keys())
                 if found[(t, n)] != expected[(t, n)]]
    return problems
