"""Talking to PostgreSQL for the gallery: the connection, one-line errors without secrets, pgvector's wire format.

Only ``facecli.gallery.postgres`` imports this, and only when a database is
used: psycopg is an optional dependency (the ``postgres`` extra).
"""

from __future__ import annotations

import functools
import os
import re
import struct
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import numpy as np
import psycopg

from facecli.errors import GalleryError
from facecli.gallery.locations import DatabaseURL

CONNECT_TIMEOUT_S = 10  # libpq waits forever by default; the URL or PGCONNECT_TIMEOUT overrides


# -- messages without secrets ------------------------------------------------------------------
def secrets(url: str) -> list[str]:
    """Passwords that must never appear in a message: the URL's (as written and decoded) and PGPASSWORD."""
    found = [m.group(1) for m in re.finditer(r"[?&](?:ssl)?password=([^&]*)", url)]
    before = url.partition("://")[2].partition("?")[0]
    for at in (i for i, c in enumerate(before) if c == "@"):  # libpq's reading and every longer one
        if ":" in before[:at]:
            password = before[:at].partition(":")[2]
            found += [password, *password.replace("@", "/").split("/")]
    found += [unquote(s) for s in found]
    if os.environ.get("PGPASSWORD"):
        found.append(os.environ["PGPASSWORD"])
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


def one_line(exc: BaseException, url: str) -> str:
    """A driver message as one line, with any password in it masked."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
    for secret in secrets(url):
        text = text.replace(secret, "***")
    return text


def database_errors(method: Callable) -> Callable:
    """A driver error inside a gallery method becomes one GalleryError line naming the (masked) location."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except psycopg.Error as exc:
            raise GalleryError(self.location, f"database error: {one_line(exc, self.url.url)}") from None

    return wrapper


# -- the connection ------------------------------------------------------------------------------
def connect(url: DatabaseURL, write: bool) -> psycopg.Connection:
    """An autocommit connection (transactions are explicit), read-only unless ``write``; or one GalleryError line."""
    # psycopg: optional (the [postgres] extra), loaded only for a database gallery
    from psycopg.conninfo import conninfo_to_dict

    try:
        given = conninfo_to_dict(url.url)
    except psycopg.Error as exc:
        raise GalleryError(str(url), f"not a valid PostgreSQL URL: {one_line(exc, url.url)}") from None
    extra: dict[str, Any] = {}
    if "connect_timeout" not in given and "PGCONNECT_TIMEOUT" not in os.environ:
        extra["connect_timeout"] = CONNECT_TIMEOUT_S
    if "application_name" not in given and "PGAPPNAME" not in os.environ:
        extra["application_name"] = "facecli"
    try:
        conn = psycopg.connect(url.url, autocommit=True, **extra)
    except psycopg.Error as exc:
        raise GalleryError(str(url), f"cannot connect: {one_line(exc, url.url)}") from None
    try:
        # nothing is found through the search path but PostgreSQL's own catalogue: a function or operator another
        # role planted elsewhere is never picked (pgvector's are named by their schema); every statement of a
        # reader runs in a read-only transaction
        conn.execute("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)")
        if not write:
            conn.execute("SET default_transaction_read_only = on")
    except psycopg.Error as exc:
        conn.close()
        raise GalleryError(str(url), f"cannot connect: {one_line(exc, url.url)}") from None
    return conn


def register_vector(conn: psycopg.Connection, oid: int) -> None:
    """numpy arrays travel as pgvector's binary ``vector``; fetched vectors come back as raw bytes
    (the gallery checks and stacks them).

    The binary form is a 16-bit size, 16 unused bits, then big-endian float32s:
    twenty lines here instead of a dependency on the ``pgvector`` package.
    """
    # psycopg: optional (the [postgres] extra), loaded only for a database gallery
    from psycopg.adapt import Dumper, Loader
    from psycopg.pq import Format

    class VectorDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj: np.ndarray) -> bytes:
            v = np.asarray(obj, dtype=">f4").ravel()
            return struct.pack(">HH", v.size, 0) + v.tobytes()

    VectorDumper.oid = oid

    class VectorLoader(Loader):
        format = Format.BINARY

        def load(self, data: Any) -> bytes:
            return bytes(data)

    conn.adapters.register_dumper(np.ndarray, VectorDumper)
    conn.adapters.register_loader(oid, VectorLoader)
