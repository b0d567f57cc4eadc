"""The gallery in one SQLite file (the embedded default), or in memory.

One file, standard library only, no pickle: embeddings are float32 blobs. A
new gallery is built under a random name beside its path and linked into
place once initialised, so there is never an empty or half-made gallery, and
no link someone planted at the path is followed; it is mode 0600 from its
first byte, because it holds biometric templates (``facecli.private``). WAL
mode and a busy timeout let readers run while one writer enrolls (writers
are serialised by BEGIN IMMEDIATE); commands that only read open it
read-only, so a gallery on read-only storage still serves them.
``PRAGMA application_id`` marks the file as facecli's, ``user_version`` holds
the schema version (``schema``); a schema holding anything facecli did not
create is refused.

``:memory:`` is a real gallery that lives as long as it is open (tests,
notebooks), searched exactly at any size or through an index built in memory.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from facecli.errors import GalleryError
from facecli.gallery import schema
from facecli.gallery.backend import Backend, lock_timeout
from facecli.gallery.dialect import SQLITE
from facecli.gallery.fileindex import TemplateIndex
from facecli.private import check_link, check_private, make_private_dir, new_file, shared_gallery_allowed

if TYPE_CHECKING:
    from facecli.gallery.search import CandidateIndex
    from facecli.gallery.store import Gallery

APPLICATION_ID = 0x46434C49  # "FCLI"
SIDECARS = ("-wal", "-shm", "-journal")  # files SQLite keeps beside the gallery
MEMORY = ":memory:"


class SqliteBackend(Backend):
    dialect = SQLITE
    vector_type = "BLOB"  # not used by SQLite's statements

    def __init__(self, conn: sqlite3.Connection, location: str, path: Path | None) -> None:
        self.location = location
        self.path = path  # None: in memory
        self._conn = conn

    # -- opening -------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, write: bool, strict: bool = True) -> tuple[SqliteBackend, list[str]]:
        """An existing gallery file, and the schema objects in it facecli did not make (refused when
        ``strict``). Refuses a file that is not private, not a facecli gallery, or from a newer schema."""
        shared = shared_gallery_allowed()
        check_private(path, "gallery", GalleryError, shared)
        for suffix in SIDECARS:
            sidecar = path.with_name(path.name + suffix)
            if suffix == "-shm":  # an index of the journal, no data; SQLite sets its mode itself
                check_link(sidecar, GalleryError)
            else:
                check_private(sidecar, "gallery journal", GalleryError, shared)
        db = cls(_connect(path, write), str(path), path)
        try:
            with db.errors("cannot use the gallery"):
                foreign = db._check(strict)
        except BaseException:
            db.close()
            raise
        return db, foreign

    @classmethod
    def create(cls, path: Path, model: str, dim: int) -> tuple[SqliteBackend, list[str]]:
        """A new, initialised gallery file at ``path``, open to be written.

        It is built under a random name beside ``path`` and linked into place:
        the link is atomic and never follows a link planted at ``path``; when
        another process got there first, its gallery stands (``Gallery.bind``
        then checks its model). An empty file (a gallery an older facecli
        began and never finished) is initialised where it is.
        """
        check_private(path, "gallery", GalleryError, shared_gallery_allowed())
        if path.exists() and not path.stat().st_size:
            db = cls(_connect(path, True), str(path), path)
            with db.errors("cannot create the gallery"):
                db._initialise(model, dim)
            db.close()
        else:
            try:
                make_private_dir(path.parent)
                with new_file(path.parent, path.name) as (_fd, tmp):
                    with contextlib.closing(sqlite3.connect(tmp, isolation_level=None)) as conn:
                        cls(conn, str(path), path)._initialise(model, dim)
                    with contextlib.suppress(FileExistsError):  # a concurrent enroll created it first
                        os.link(tmp, path)
            except OSError as exc:
                raise GalleryError(str(path), f"cannot create the gallery: {exc.strerror or exc}") from None
        return cls.open(path, write=True)

    @classmethod
    def memory(cls, location: str = MEMORY) -> SqliteBackend:
        """An empty gallery schema in memory: a ``:memory:`` gallery, or what a new gallery reads as until its
        first write creates it (``location``: how messages name it)."""
        db = cls(sqlite3.connect(MEMORY, isolation_level=None, check_same_thread=False), location, None)
        db._initialise(None, 0)
        return db

    def adopt(self, model: str, dim: int) -> SqliteBackend:
        """An in-memory gallery takes ``model`` (its first write)."""
        with self.transaction():
            meta = {"model": model, "dim": str(dim), "created": str(time.time())}
            self._conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        return self

    @staticmethod
    def exists(path: Path) -> bool:
        """Whether a gallery is there: a file that is not empty."""
        return os.path.lexists(path) and not (path.is_file() and path.stat().st_size == 0)

    def _initialise(self, model: str | None, dim: int) -> None:
        """Create the schema (and with a ``model``, its meta) in a new, empty database."""
        with self.transaction():
            if self._conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
                return  # initialised already (an older facecli's concurrent enroll), or foreign: _check says
            schema.create(self, dim)
            if model is not None:
                meta = {"model": model, "dim": str(dim), "created": str(time.time())}
                self._conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        with contextlib.suppress(sqlite3.OperationalError):
            self._conn.execute("PRAGMA journal_mode = WAL")

    def _check(self, strict: bool) -> list[str]:
        """Refuse what is not a facecli gallery this version reads; the foreign schema objects found."""
        app = self._conn.execute("PRAGMA application_id").fetchone()[0]
        version = self.schema_version()
        if app != APPLICATION_ID:
            raise GalleryError(self.location, "not a facecli gallery (an SQLite file of another application)")
        if version not in schema.READABLE:
            raise GalleryError(self.location, f"written by a newer facecli (schema {version}; "
                                              f"this version reads up to {schema.SCHEMA_VERSION})")
        foreign = self.foreign(version, 0)
        if foreign and strict:
            raise GalleryError(self.location, f"{foreign[0]}" + (f" (and {len(foreign) - 1} more)" if len(foreign) > 1
                                                                else "") + ": refusing a gallery that may have been "
                                                                           "tampered with; `facecli gallery check` "
                                                                           "lists what is wrong")
        return foreign

    # -- running -------------------------------------------------------------------
    def run(self, sql: str, params: tuple | list = (), vectors: bool = False) -> Any:
        return self._conn.execute(sql, params)

    def run_each(self, sql: str, rows: list[tuple]) -> list[tuple | None]:
        return [self._conn.execute(sql, row).fetchone() for row in rows]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT (one writer at a time), rolled back on any error: all or nothing."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise GalleryError(self.location, f"cannot write: {exc}") from None
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise GalleryError(self.location, f"cannot write: {exc}") from None
            raise

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction (WAL: it sees one committed state throughout)."""
        if self._conn.in_transaction:
            yield
            return
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("COMMIT")

    @contextlib.contextmanager
    def errors(self, doing: str = "cannot read the gallery") -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            if "file is not a database" in str(exc) or "malformed" in str(exc):
                raise GalleryError(self.location, "not a facecli gallery (not an SQLite database)") from None
            raise GalleryError(self.location, f"{doing}: {exc}") from None

    def schema_version(self, writing: bool = False) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def set_version(self, version: int) -> None:
        self._conn.execute(f"PRAGMA user_version = {int(version)}")

    def lock_enrolls(self) -> None:
        """Nothing to do: BEGIN IMMEDIATE already admits one writer at a time."""

    def integrity(self, rows: bool = True) -> list[str]:
        problems = [row[0] for row in self._conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
        keys = self._conn.execute("PRAGMA foreign_key_check")
        return problems + [f"foreign key violation in {row[0]}" for row in keys]

    def foreign(self, version: int, dim: int) -> list[str]:
        """What the schema holds that facecli did not create at ``version`` (or lacks, or has changed).

        A trigger that copies a chosen embedding into every new template, or a
        view named like a facecli table, would make strangers match; so would a
        table redefined with other defaults.
        """
        expected = _expected_objects(version)
        found = _objects(self._conn)
        problems = [f"{t} {n} was not created by facecli" for (t, n) in sorted(found.keys() - expected.keys())]
        problems += [f"{t} {n} is missing" for (t, n) in sorted(expected.keys() - found.keys())]
        problems += [f"{t} {n} has been changed" for (t, n) in sorted(found.keys() & expected.keys())
                     if found[(t, n)] != expected[(t, n)]]
        return problems

    def size(self) -> int:
        if self.path is None:
            return self._conn.execute("PRAGMA page_count").fetchone()[0] * \
                self._conn.execute("PRAGMA page_size").fetchone()[0]
        return self.path.stat().st_size

    def search_index(self, gallery: Gallery, log: Callable[[str], None]) -> CandidateIndex:
        """The usearch index beside the file (``fileindex``), extended or rebuilt first if stale; in memory, one
        built for this open gallery."""
        if self.path is None:
            matrix = gallery._templates()
            return TemplateIndex.build(matrix.matrix, matrix.ids)
        return TemplateIndex.for_gallery(gallery, self.path, log)

    def close(self) -> None:
        self._conn.close()


def _connect(path: Path, write: bool) -> sqlite3.Connection:
    """A connection: read-write, or read-only — immutable where the file or its folder cannot be written
    (a read-only mount, an immutable file), since SQLite cannot then keep its shared-memory file."""
    uri = f"file:{quote(str(path))}?mode={'rw' if write else 'ro'}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=lock_timeout(), isolation_level=None)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            conn.close()
            if write:
                raise GalleryError(str(path), f"cannot write: {exc} (is the gallery or its folder read-only?)") \
                    from None
            # no journal index can be kept here (a read-only mount, an immutable file or folder): nobody can
            # be writing, so the file is read as it stands
            conn = sqlite3.connect(f"{uri}&immutable=1", uri=True, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {round(lock_timeout() * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        if "file is not a database" in str(exc) or "malformed" in str(exc):
            raise GalleryError(str(path), "not a facecli gallery (not an SQLite database)") from None
        raise GalleryError(str(path), f"cannot open: {exc}") from None
    return conn


def _objects(conn: sqlite3.Connection) -> dict[tuple[str, str], str]:
    """(type, name) -> the CREATE statement of every schema object, whitespace folded."""
    return {(t, n): " ".join((sql or "").split()) for t, n, sql in
            conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT GLOB 'sqlite_*'")}


@lru_cache
def _expected_objects(version: int) -> dict[tuple[str, str], str]:
    """What facecli makes at ``version``: read back from an in-memory database built with the same steps."""
    db = SqliteBackend(sqlite3.connect(MEMORY, isolation_level=None), MEMORY, None)
    try:
        schema.create(db, 0, version)
        return _objects(db._conn)
    finally:
        db.close()
