"""The gallery file: enrolled people and their face templates in one SQLite file.

One file, standard library only, no pickle: embeddings are float32 blobs.
Every change is a single transaction, so an interrupted or failed enroll
leaves no half person. A new gallery is built under a random name beside
its path and linked into place once initialised, so there is never an empty
or half-made gallery, and no link someone planted at the path is followed;
it is mode 0600 from its first byte, because it holds biometric templates
(``facecli.private``). WAL mode and a busy timeout let readers run while one
writer enrolls; commands that only read open it read-only, so a gallery on
read-only storage still serves them. ``PRAGMA application_id`` marks the file
as facecli's, and ``user_version`` holds the schema version
(``migrations``); a schema holding anything facecli did not create is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np

from facecli.errors import BadValue, GalleryError, ModelMismatch
from facecli.gallery import migrations
from facecli.gallery.base import (
    Gallery,
    GalleryState,
    box_problem,
    head_problem,
    stack_templates,
    stored_box,
    template_problem,
)
from facecli.matching import TemplateMatrix
from facecli.private import check_link, check_private, make_private_dir, new_file, shared_gallery_allowed
from facecli.values import HeadRecord, PersonInfo, Stored, Template

if TYPE_CHECKING:
    from facecli.gallery.search import TemplateIndex

APPLICATION_ID = 0x46434C49  # "FCLI"
BUSY_TIMEOUT_MS = 60_000
SIDECARS = ("-wal", "-shm", "-journal")  # files SQLite keeps beside the gallery


class SqliteGallery(Gallery):
    """A facecli gallery file, opened for one command."""

    def __init__(self, path: Path, conn: sqlite3.Connection, writable: bool) -> None:
        self.path = path
        self.location = str(path)
        self.writable = writable
        self._conn = conn
        self._matrix: TemplateMatrix | None = None
        self.foreign: list[str] = []  # schema objects facecli did not make (``check`` reports them)

    # -- opening ---------------------------------------------------------
    @classmethod
    def open(cls, path: Path, model: str | None = None, create: bool = False, write: bool = False,
             strict: bool = True) -> SqliteGallery:
        """Open the gallery file for ``model`` (None: its own model); ``create`` makes it if it is not there.

        ``write`` opens it to be changed (``create`` implies it); otherwise it
        is opened read-only. Refuses a file that is not a facecli gallery, one
        from a newer schema, one built with another model, one whose schema
        holds foreign objects (unless not ``strict``: ``gallery check`` lists
        them), and one that is not private (``facecli.private``). An older
        schema is read as it is, and upgraded by the first write.
        """
        if create and model is None:
            raise GalleryError(str(path), "a new gallery needs a model")
        shared = shared_gallery_allowed()
        check_private(path, "gallery", GalleryError, shared)
        size = path.stat().st_size if path.exists() else None
        if not size:
            # an empty file is a gallery an older facecli began and never finished: no gallery yet
            if not create:
                raise GalleryError(str(path), "no gallery here yet; enroll someone first (facecli enroll NAME PHOTO)")
            if size is None:
                cls._create(path, model)
        for suffix in SIDECARS:
            sidecar = path.with_name(path.name + suffix)
            if suffix == "-shm":  # an index of the journal, no data; SQLite sets its mode itself
                check_link(sidecar, GalleryError)
            else:
                check_private(sidecar, "gallery journal", GalleryError, shared)
        gallery = cls(path, cls._connect(path, write or create), write or create)
        try:
            if size == 0:
                gallery._initialise(model)
            gallery._check(model, strict)
        except sqlite3.DatabaseError as exc:
            gallery.close()
            raise _database_error(path, exc, "cannot use the gallery") from None
        except GalleryError:
            gallery.close()
            raise
        return gallery

    @staticmethod
    def _connect(path: Path, write: bool) -> sqlite3.Connection:
        """A connection: read-write, or read-only — immutable where the file or its folder cannot be written
        (a read-only mount, an immutable file), since SQLite cannot then keep its shared-memory file."""
        uri = f"file:{quote(str(path))}?mode={'rw' if write else 'ro'}"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
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
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise _database_error(path, exc, "cannot open") from None
        return conn

    @staticmethod
    def model_of(path: Path) -> str | None:
        """The model an existing gallery was built with, or None (no file, or not a gallery: ``open`` says why)."""
        if not path.is_file() or not path.stat().st_size:
            return None
        try:
            with contextlib.closing(SqliteGallery._connect(path, write=False)) as conn:
                row = conn.execute("SELECT value FROM meta WHERE key = 'model'").fetchone()
        except (sqlite3.Error, GalleryError):
            return None
        return row[0] if row else None

    @classmethod
    def _create(cls, path: Path, model: str) -> None:
        """Build a new, initialised gallery under a random name beside ``path``, then link it into place.

        The link is atomic and never follows a link planted at ``path``; when
        another process got there first, its gallery stands and this one goes.
        """
        try:
            make_private_dir(path.parent)
            with new_file(path.parent, path.name) as (_fd, tmp):
                conn = sqlite3.connect(tmp, isolation_level=None)
                try:
                    cls(path, conn, True)._initialise(model)
                finally:
                    conn.close()
                with contextlib.suppress(FileExistsError):  # a concurrent enroll created it first
                    os.link(tmp, path)
        except OSError as exc:
            raise GalleryError(str(path), f"cannot create the gallery: {exc.strerror or exc}") from None

    def _initialise(self, model: str) -> None:
        """Create the schema in a new, empty database."""
        from facecli.models import pipeline_spec

        dim = pipeline_spec(model).dim
        with self.transaction():
            if self._conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
                return  # initialised already (an older facecli's concurrent enroll), or foreign: _check says
            migrations.create(self._conn)
            meta = {"model": model, "dim": str(dim), "created": str(time.time())}
            self._conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        with contextlib.suppress(sqlite3.OperationalError):
            self._conn.execute("PRAGMA journal_mode = WAL")

    def schema_version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def _check(self, model: str | None, strict: bool = True) -> None:
        """Refuse what is not a sound facecli gallery for ``model``."""
        app = self._conn.execute("PRAGMA application_id").fetchone()[0]
        version = self.schema_version()
        if app != APPLICATION_ID:
            raise GalleryError(str(self.path), "not a facecli gallery (an SQLite file of another application)")
        if version not in migrations.READABLE:
            raise GalleryError(str(self.path), f"written by a newer facecli (schema {version}; "
                                               f"this version reads up to {migrations.SCHEMA_VERSION})")
        self.foreign = migrations.foreign_objects(self._conn, version)
        if self.foreign and strict:
            raise GalleryError(str(self.path), f"{self.foreign[0]}"
                                               + (f" (and {len(self.foreign) - 1} more)" if len(self.foreign) > 1
                                                  else "") + ": refusing a gallery that may have been tampered "
                                                             "with; `facecli gallery check` lists what is wrong")
        if model is not None:
            from facecli.models import pipeline_spec

            meta, dim = self.meta(), pipeline_spec(model).dim
            if meta.get("model") != model or meta.get("dim") != str(dim):
                raise ModelMismatch(str(self.path), meta.get("model"), meta.get("dim"), model, dim)

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error: all or nothing.

        The first write to a gallery of an older schema upgrades it in the
        same transaction (``migrations``): both happen, or neither.
        """
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise GalleryError(str(self.path), f"cannot write: {exc}") from None
        try:
            version = self.schema_version()
            if 0 < version < migrations.SCHEMA_VERSION:
                migrations.upgrade(self._conn, version)
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise GalleryError(str(self.path), f"cannot write: {exc}") from None
            raise
        self._matrix = None
        self._changed()

    # -- reading ---------------------------------------------------------
    def meta(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT key, value FROM meta"))

    def search_index(self, log: Callable[[str], None] = lambda _m: None) -> TemplateIndex:
        """The usearch index beside the file (``search.TemplateIndex``), extended or rebuilt first if stale."""
        from facecli.gallery.search import TemplateIndex

        return TemplateIndex.for_gallery(self, log)

    def set_fpir(self, fpir: float | None) -> None:
        """Store (or with None, forget) the gallery's FPIR target."""
        if fpir is not None and not 0 < fpir < 1:
            raise BadValue("fpir", fpir, "must be between 0 and 1")
        with self.transaction() as conn:
            if fpir is None:
                conn.execute("DELETE FROM meta WHERE key = 'fpir'")
            else:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('fpir', ?)", (repr(float(fpir)),))

    def set_head(self, head: HeadRecord | None) -> None:
        """Record (or with None, forget) the head this gallery is used with: two meta rows, one transaction."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM meta WHERE key IN ('head_sha256', 'head_path')")
            if head is not None:
                conn.executemany("INSERT INTO meta VALUES (?, ?)",
                                 [("head_sha256", head.sha256), ("head_path", head.path)])

    def persons(self) -> list[PersonInfo]:
        rows = self._conn.execute(
            "SELECT p.name, COUNT(t.id), p.created FROM persons p "
            "LEFT JOIN templates t ON t.person_id = p.id GROUP BY p.id ORDER BY p.name")
        return [PersonInfo(name, n, created) for name, n, created in rows]

    def person_count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM persons").fetchone()[0]

    def has_person(self, name: str) -> bool:
        return self._conn.execute("SELECT 1 FROM persons WHERE name = ?", (name,)).fetchone() is not None

    def templates_of(self, name: str) -> list[dict]:
        rows = self._conn.execute(
            "SELECT t.id, t.source, t.sha256, t.box, t.created FROM templates t "
            "JOIN persons p ON p.id = t.person_id WHERE p.name = ? ORDER BY t.id", (name,))
        return [{"id": i, "source": s, "sha256": h, "box": self._box(i, b), "created": c} for i, s, h, b, c in rows]

    def embeddings_of(self, name: str) -> np.ndarray:
        rows = self._conn.execute("SELECT t.id, t.embedding FROM templates t JOIN persons p ON p.id = t.person_id "
                                  "WHERE p.name = ?", (name,)).fetchall()
        return self._stack([r[1] for r in rows], [r[0] for r in rows])

    def template_matrix(self) -> TemplateMatrix:
        """Every template in one matrix, read once per process and then reused."""
        if self._matrix is None:
            self._matrix = self._matrix_of(self._conn.execute(
                "SELECT p.name, t.embedding, t.id FROM templates t JOIN persons p ON p.id = t.person_id "
                "ORDER BY p.name, t.id").fetchall())
        return self._matrix

    def state(self) -> GalleryState:
        meta = self.meta()
        count, max_id = self._conn.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM templates").fetchone()
        return GalleryState(meta["model"], int(meta["dim"]), count, max_id, int(meta.get("removals", "0")))

    def count_up_to(self, max_id: int) -> int:
        """Templates with an id up to ``max_id``: equal to an index's count when none of its rows went."""
        return self._conn.execute("SELECT COUNT(*) FROM templates WHERE id <= ?", (max_id,)).fetchone()[0]

    def iter_embeddings(self, after_id: int = 0, chunk: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(template ids, float32 embeddings) in id order, ``chunk`` rows at a time, from ``after_id`` on."""
        while True:
            rows = self._conn.execute("SELECT id, embedding FROM templates WHERE id > ? ORDER BY id LIMIT ?",
                                      (after_id, chunk)).fetchall()
            if not rows:
                return
            ids = [r[0] for r in rows]
            yield np.array(ids, dtype=np.int64), self._stack([r[1] for r in rows], ids)
            after_id = rows[-1][0]

    def templates_by_id(self, ids: np.ndarray, whole_persons: bool = False) -> TemplateMatrix:
        """The templates with these ids (or, ``whole_persons``, all templates of their persons),
        as a TemplateMatrix (rows grouped by person)."""
        chosen = "SELECT value FROM json_each(?)"
        if whole_persons:
            chosen = ("SELECT id FROM templates WHERE person_id IN "
                      f"(SELECT person_id FROM templates WHERE id IN ({chosen}))")
        rows = self._conn.execute(
            "SELECT p.name, t.embedding, t.id FROM templates t JOIN persons p ON p.id = t.person_id "
            f"WHERE t.id IN ({chosen}) ORDER BY p.name, t.id",
            (json.dumps([int(i) for i in ids]),)).fetchall()
        return self._matrix_of(rows)

    def sources_of(self, ids: list[int]) -> dict[int, dict]:
        """Template id -> its source photo, content hash, face box and when it was enrolled."""
        rows = self._conn.execute("SELECT id, source, sha256, box, created FROM templates "
                                  "WHERE id IN (SELECT value FROM json_each(?))", (json.dumps([int(i) for i in ids]),))
        return {i: {"source": s, "sha256": h, "box": self._box(i, b), "created": c} for i, s, h, b, c in rows}

    def unused_names(self, prefix: str, count: int) -> list[str]:
        """``count`` names ``prefix1``, ``prefix2``… after the highest one already enrolled."""
        taken = [name[len(prefix):] for (name,) in
                 self._conn.execute("SELECT name FROM persons WHERE name LIKE ? || '%'", (prefix,))]
        start = max([int(t) for t in taken if t.isdigit()], default=0)
        return [f"{prefix}{start + k}" for k in range(1, count + 1)]

    def _stack(self, blobs: list[bytes], ids: list[int]) -> np.ndarray:
        return stack_templates(blobs, ids, self.dim, str(self.path))

    def _box(self, template: int, text: str) -> list[float]:
        return stored_box(text, template, str(self.path))

    # -- writing ---------------------------------------------------------
    def enroll(self, entries: Iterable[tuple[str, Template]]) -> list[Stored]:
        """Add (name, template) pairs in one transaction; new names become persons.

        A photo (by content hash) already enrolled for that person is skipped,
        not duplicated; one enrolled under another name is refused (``taken``):
        one photo, one person.
        """
        stored = []
        model = self.model
        now = time.time()
        with self.transaction() as conn:
            for name, t in entries:
                holder = conn.execute("SELECT p.name FROM templates t JOIN persons p ON p.id = t.person_id "
                                      "WHERE t.sha256 = ? AND p.name != ? LIMIT 1", (t.sha256, name)).fetchone()
                if holder is not None:
                    stored.append(Stored("taken", holder[0]))
                    continue
                created = now if t.created is None else t.created
                conn.execute("INSERT OR IGNORE INTO persons (name, created) VALUES (?, ?)", (name, created))
                (person_id,) = conn.execute("SELECT id FROM persons WHERE name = ?", (name,)).fetchone()
                blob = np.asarray(t.embedding, dtype="<f4").tobytes()
                cur = conn.execute(
                    "INSERT OR IGNORE INTO templates (person_id, model, embedding, source, sha256, box, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (person_id, model, blob, t.source, t.sha256, json.dumps([round(v, 1) for v in t.box]), created))
                stored.append(Stored("added" if cur.rowcount == 1 else "present"))
        return stored

    def remove(self, name: str) -> int:
        """Delete a person and their templates; returns the number of templates removed."""
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM persons WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise GalleryError(name, f"no such person in {self.path}")
            n = conn.execute("DELETE FROM templates WHERE person_id = ?", row).rowcount
            conn.execute("DELETE FROM persons WHERE id = ?", row)
            # counted so that a search index built before this removal knows it is stale
            conn.execute("INSERT INTO meta VALUES ('removals', '1') "
                         "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1")
        return n

    def _rename(self, old: str, new: str) -> None:
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM persons WHERE name = ?", (new,)).fetchone():
                raise GalleryError(new, "a person with this name is already enrolled")
            if conn.execute("UPDATE persons SET name = ? WHERE name = ?", (new, old)).rowcount == 0:
                raise GalleryError(old, f"no such person in {self.path}")

    def check(self) -> list[str]:
        """Everything wrong with the file: SQLite's integrity check, foreign schema objects, templates that do
        not fit the model or cannot be matched against, malformed rows; [] when sound."""
        problems = [row[0] for row in self._conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [f"foreign key violation in {row[0]}" for row in self._conn.execute("PRAGMA foreign_key_check")]
        problems += self.foreign
        if any(p.startswith("table") and p.endswith("is missing") for p in self.foreign):
            return problems  # the rows cannot be read
        meta = self.meta()
        dim = int(meta["dim"])
        if (problem := head_problem(meta)) is not None:
            problems.append(problem)
        for model, n in self._conn.execute("SELECT model, COUNT(*) FROM templates GROUP BY model"):
            if model != meta["model"]:
                problems.append(f"{n} templates from model {model}, the gallery is for {meta['model']}")
        rows = self._conn.execute("SELECT t.id, p.name, t.embedding, t.box FROM templates t "
                                  "JOIN persons p ON p.id = t.person_id")
        for tid, name, blob, box in rows:
            for problem in (template_problem(blob if isinstance(blob, bytes) else b"", dim), box_problem(box)):
                if problem is not None:
                    problems.append(f"template {tid} of {name}: {problem}")
        empty = self._conn.execute("SELECT name FROM persons p WHERE NOT EXISTS "
                                   "(SELECT 1 FROM templates t WHERE t.person_id = p.id)").fetchall()
        problems += [f"person {name} has no template" for (name,) in empty]
        return problems

    def stats(self) -> dict:
        meta = self.meta()
        n_templates = self._conn.execute("SELECT COUNT(*) FROM templates").fetchone()[0]
        return {
            "gallery": str(self.path),
            "model": meta["model"],
            "dim": int(meta["dim"]),
            "schema": self.schema_version(),
            "persons": self.person_count(),
            "templates": n_templates,
            "bytes": self.path.stat().st_size,
        }


def _database_error(path: Path, exc: sqlite3.Error, doing: str) -> GalleryError:
    if "file is not a database" in str(exc) or "malformed" in str(exc):
        return GalleryError(str(path), "not a facecli gallery (not an SQLite database)")
    return GalleryError(str(path), f"{doing}: {exc}")
