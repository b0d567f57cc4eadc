"""The two SQL dialects a gallery is written in: one text per query, rewritten for SQLite or PostgreSQL.

Queries are written once (``store.Gallery``) with ``?`` placeholders,
``{s}`` before each table name (the schema: none in a file, ``facecli.`` in a
database), ``{c}`` after each ordering by name (byte order in both: SQLite's
default, PostgreSQL's ``COLLATE "C"``), ``{like}`` for a case-insensitive
prefix match, ``{ids:COLUMN}`` for "COLUMN is one of a bound list", and
``{bytes:COLUMN}`` for a text column's stored bytes. The
dialect also says how a template travels: a little-endian float32 blob in
the file, pgvector's ``vector`` in the database.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Dialect:
    name: str  # "sqlite" or "postgres": the key of each per-dialect schema step
    schema: str  # prefix of every table name
    collate: str  # after ORDER BY name: code-point (byte) order
    like: str  # case-insensitive LIKE
    placeholder: str  # what a bound parameter is written as

    def sql(self, text: str) -> str:
        """``text`` in this dialect (cached: a query is rewritten once per process)."""
        return _rewrite(self, text)

    def id_list(self, ids: list[int] | list[str]) -> Any:
        """How a list bound to ``{ids:COLUMN}`` travels: JSON text (SQLite's json_each), or an array."""
        return json.dumps(list(ids)) if self.name == "sqlite" else list(ids)

    def encode(self, vector: np.ndarray) -> Any:
        """A unit embedding as the backend stores it."""
        if self.name == "sqlite":
            return np.asarray(vector, dtype="<f4").tobytes()
        return np.asarray(vector, dtype=np.float32)  # psycopg sends it as pgvector's binary vector

    def decode(self, raw: Any) -> np.ndarray | None:
        """A stored template as float32 values (None when its bytes are not whole float32s)."""
        if not isinstance(raw, (bytes, bytearray, memoryview)):  # another tool stored a number or text
            return None
        if self.name == "postgres":  # pgvector's binary form: 16-bit size, 16 unused bits, big-endian float32s
            raw = bytes(raw)[4:]
        if not isinstance(raw, bytes) or len(raw) % 4:
            return None
        return np.frombuffer(raw, dtype="<f4" if self.name == "sqlite" else ">f4").astype(np.float32)

    def decode_all(self, raws: list[Any], dim: int) -> np.ndarray | list[np.ndarray | None]:
        """Stored templates as one (T, dim) float32 matrix in one step when each has the size of ``dim`` values
        (100 000 templates: one copy, not 100 000), else each decoded alone (``rows.checked_matrix`` names the
        one that is not)."""
        header = 4 if self.name == "postgres" else 0
        if raws and all(isinstance(r, (bytes, bytearray, memoryview)) and len(r) == header + 4 * dim for r in raws):
            raw = np.frombuffer(b"".join(raws), dtype=np.uint8).reshape(len(raws), header + 4 * dim)[:, header:]
            return np.ascontiguousarray(raw).view("<f4" if self.name == "sqlite" else ">f4").astype(np.float32)
        return [self.decode(r) for r in raws]


SQLITE = Dialect("sqlite", "", "", "LIKE", "?")
POSTGRES = Dialect("postgres", "facecli.", ' COLLATE "C"', "ILIKE", "%s")


@cache
def _rewrite(dialect: Dialect, text: str) -> str:
    def ids(m: re.Match) -> str:
        column = m.group(1)
        return f"{column} IN (SELECT value FROM json_each(?))" if dialect.name == "sqlite" else f"{column} = ANY(?)"

    def raw(m: re.Match) -> str:  # a text column's bytes as stored, whatever they hold
        column = m.group(1)
        return f"CAST({column} AS BLOB)" if dialect.name == "sqlite" else f"pg_catalog.convert_to({column}, 'UTF8')"

    text = re.sub(r"\{ids:([\w.]+)\}", ids, text)
    text = re.sub(r"\{bytes:([\w.]+)\}", raw, text)
    text = text.format(s=dialect.schema, c=dialect.collate, like=dialect.like)
    if dialect.name == "postgres":  # psycopg's placeholders: a literal % is written %%
        text = text.replace("%", "%%").replace("?", "%s")
    return text
