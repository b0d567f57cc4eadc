"""The gallery in PostgreSQL with pgvector: one gallery for many processes on many hosts.

Selected by a location ``postgresql://user@host:port/dbname`` (or ``postgres://``)
wherever a gallery file is accepted, and it behaves as the file does: same
methods, same answers, same errors. The URL goes to libpq unchanged, so
``PGPASSWORD``, ``~/.pgpass`` (``PGPASSFILE``), ``sslmode`` and every other
libpq parameter and variable work as libpq defines them; a password written
in the URL is masked wherever the location is shown (``gallery.location``,
``locations.DatabaseURL``) and in every driver message passed on.

Everything lives in the schema ``facecli`` of the database (one gallery per
database; ``pgschema`` holds its definition and history): ``meta`` (model,
dim, schema version, index settings, fpir …), ``persons``, ``templates``,
whose embeddings are ``vector(dim)`` (float32: exactly what facecli computed,
so distances re-ranked here are exact), and ``schema_history``. An HNSW
index on them (inner product; the embeddings are unit vectors) proposes
candidates above ``exact_max`` templates, and facecli recomputes their
distances in float32 (``search.Searcher``).

Every write is one READ COMMITTED transaction; enrolls are serialised by an
advisory lock (as the file serialises its writers), so one photo stays one
person's. A reader gets persons in one statement (``template_matrix``,
``templates_by_id``) and multi-statement reports (``state``, ``check``,
``stats``) in one REPEATABLE READ snapshot, so it never sees half an enroll,
remove or rename. A gallery opened only to read runs in read-only
transactions (a role with nothing but SELECT serves every read). SQL is fixed
text with bound parameters; the only composed parts are integers and the
index kind, one of two fixed words.

psycopg is imported only when a database is used: ``import facecli`` and
the file gallery never load this module (``pip install 'facecli[postgres]'``).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import psycopg

from facecli.errors import BadValue, GalleryError, ModelMismatch
from facecli.gallery import pgschema
from facecli.gallery.base import (
    Gallery,
    GalleryState,
    box_problem,
    checked_matrix,
    head_problem,
    stack_templates,
    stored_box,
)
from facecli.gallery.locations import DatabaseURL, as_location
from facecli.gallery.pgconnect import connect, database_errors, one_line, register_vector
from facecli.matching import TemplateMatrix
from facecli.values import HeadRecord, PersonInfo, Stored, Template

#: Advisory locks (per database): (LOCK_KEY, SCHEMA_LOCK) serialises creating and upgrading the schema,
#: (LOCK_KEY, ENROLL_LOCK) enrolls ("FCLI").
LOCK_KEY, SCHEMA_LOCK, ENROLL_LOCK = 0x46434C49, 0, 1
#: HNSW index settings of a new gallery (bench/pgvector_search.py measured them; see bench/RESULTS.md): the
#: vectors the graph holds (``halfvec``: float16, half the size of ``vector``'s float32), its degree and its
#: build breadth. A gallery keeps its own in meta (``set_index`` changes them).
HNSW = {"kind": "halfvec", "m": 16, "ef_construction": 64}
#: Breadth of each query's graph walk (never below the number of candidates asked for).
EF_SEARCH = 256


# -- the gallery ------------------------------------------------------------------------------
class PostgresGallery(Gallery):
    """A facecli gallery in a PostgreSQL database, opened for one command."""

    def __init__(self, url: DatabaseURL, conn: psycopg.Connection, writable: bool) -> None:
        self.url = url
        self.location = str(url)  # the URL with its password masked: what every message shows
        self.writable = writable
        self.version = 0
        self.foreign: list[str] = []  # schema objects facecli did not make (``check`` reports them)
        #: breadth of the index's graph walk for this object's searches (``EF_SEARCH``)
        self.ef_search = EF_SEARCH
        self._conn = conn
        self._matrix: TemplateMatrix | None = None
        self._model = ""
        self._dim = 0
        self._index: dict[str, Any] | None = None

    # -- opening ---------------------------------------------------------
    @classmethod
    def open(cls, location: DatabaseURL | str, model: str | None = None, create: bool = False,
             write: bool = False, strict: bool = True) -> PostgresGallery:
        """Open the gallery in this database for ``model`` (None: its own model); ``create`` makes it if missing.

        ``write`` opens it to be changed (``create`` implies it); otherwise
        every statement runs in a read-only transaction. Refuses a database
        without a gallery (unless ``create``), one whose schema facecli holds
        something else, one from a newer schema, one whose schema holds
        objects facecli did not make (unless not ``strict``: ``gallery check``
        lists them), and one built with another model. An older schema is
        read as it is, and upgraded by the first write.
        """
        url = as_location(location)
        if not isinstance(url, DatabaseURL):
            raise GalleryError(str(location), "not a PostgreSQL URL (postgresql://user@host:port/dbname)")
        if create and model is None:
            raise GalleryError(str(url), "a new gallery needs a model")
        gallery = cls(url, connect(url, write or create), write or create)
        try:
            gallery._open(model, create, strict)
        except BaseException:
            gallery.close()
            raise
        return gallery

    @database_errors
    def _open(self, model: str | None, create: bool, strict: bool) -> None:
        if not self._exists():
            if not create:
                raise GalleryError(self.location, "no gallery here yet; enroll someone first "
                                                  "(facecli enroll NAME PHOTO)")
            self._create(model)
        self._use_extension()
        self._check(model, strict)

    def _exists(self) -> bool:
        """Whether the database holds a facecli gallery (the schema ``facecli`` with its meta table)."""
        schema, meta = self._conn.execute(
            "SELECT to_regnamespace('facecli') IS NOT NULL, to_regclass('facecli.meta') IS NOT NULL").fetchone()
        if schema and not meta:
            raise GalleryError(self.location, "not a facecli gallery (its schema facecli holds something else)")
        return bool(meta)

    def _use_extension(self) -> None:
        """Find pgvector's types (whatever schema it was installed in) and teach the connection its binary form."""
        row = self._conn.execute(
            "SELECT n.nspname, t.oid FROM pg_catalog.pg_extension e "
            "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
            "JOIN pg_catalog.pg_type t ON t.typnamespace = n.oid AND t.typname = 'vector' "
            "WHERE e.extname = 'vector'").fetchone()
        if row is None:
            raise GalleryError(self.location, "the pgvector extension is not installed in this database "
                                              "(a superuser runs: CREATE EXTENSION vector)")
        schema, oid = row
        # pgvector's types and operators are found through the search path; facecli's tables are always
        # named facecli.*, and pg_catalog comes first anyway
        self._conn.execute("SELECT pg_catalog.set_config('search_path', pg_catalog.quote_ident(%s), false)",
                           (schema,))
        register_vector(self._conn, oid)

    def _create(self, model: str) -> None:
        """Create the extension (where allowed and missing) and the schema; idempotent across processes."""
        from facecli.models import pipeline_spec

        dim = pipeline_spec(model).dim
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_KEY, SCHEMA_LOCK))
                if self._exists():
                    return  # created meanwhile by a concurrent enroll
                if not self._conn.execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'vector'").fetchone():
                    self._conn.execute("CREATE EXTENSION vector")
                self._use_extension()
                pgschema.create(self._conn, dim, HNSW)
                meta = {"model": model, "dim": str(dim), "created": str(time.time()), "hnsw": json.dumps(HNSW)}
                with self._conn.cursor() as cur:
                    cur.executemany("INSERT INTO facecli.meta VALUES (%s, %s)", list(meta.items()))
        except psycopg.errors.InsufficientPrivilege as exc:
            hint = ("the pgvector extension is not installed and this role may not install it "
                    "(a superuser runs: CREATE EXTENSION vector)" if "extension" in str(exc)
                    else f"cannot create the gallery: {one_line(exc, self.url.url)}")
            raise GalleryError(self.location, hint) from None
        except (psycopg.errors.FeatureNotSupported, psycopg.errors.UndefinedFile) as exc:
            raise GalleryError(self.location, f"cannot create the gallery: {one_line(exc, self.url.url)}") \
                from None

    def _check(self, model: str | None, strict: bool) -> None:
        """Refuse what is not a sound facecli gallery for ``model``."""
        meta = self.meta()
        version = int(meta["schema"]) if meta.get("schema", "").isdigit() else 0
        if "model" not in meta or not meta.get("dim", "").isdigit() or version < 1:
            raise GalleryError(self.location, "not a facecli gallery (its schema facecli holds something else)")
        if version not in pgschema.READABLE:
            raise GalleryError(self.location, f"written by a newer facecli (schema {version}; "
                                              f"this version reads up to {pgschema.SCHEMA_VERSION})")
        self.version, self._model, self._dim = version, meta["model"], int(meta["dim"])
        self.foreign = []
        try:
            stored = json.loads(meta["hnsw"]) if "hnsw" in meta else None
        except ValueError:
            stored = False
        self._index = pgschema.check_index(stored)
        if stored is not None and self._index is None:
            self.foreign.append(f"meta hnsw {meta['hnsw'][:40]!r} is not an index setting facecli writes")
        self.foreign += pgschema.foreign_objects(self._conn, version, self._dim, self._index)
        if self.foreign and strict:
            more = f" (and {len(self.foreign) - 1} more)" if len(self.foreign) > 1 else ""
            raise GalleryError(self.location, f"{self.foreign[0]}{more}: refusing a gallery that may have been "
                                              "tampered with; `facecli gallery check` lists what is wrong")
        if model is not None:
            from facecli.models import pipeline_spec

            dim = pipeline_spec(model).dim
            if meta["model"] != model or meta["dim"] != str(dim):
                raise ModelMismatch(self.location, meta["model"], meta["dim"], model, dim)

    @staticmethod
    def model_of(location: DatabaseURL | str) -> str | None:
        """The model the database's gallery was built with, or None (none there, or unreachable: ``open`` says why)."""
        url = as_location(location)
        try:
            conn = connect(url, write=False)  # type: ignore[arg-type]
        except GalleryError:
            return None
        try:
            if conn.execute("SELECT to_regclass('facecli.meta')").fetchone()[0] is None:
                return None
            row = conn.execute("SELECT value FROM facecli.meta WHERE key = 'model'").fetchone()
            return row[0] if row else None
        except psycopg.Error:
            return None
        finally:
            conn.close()

    @staticmethod
    def exists(location: DatabaseURL | str) -> bool:
        """Whether the database holds a gallery already (an unreachable database is a GalleryError)."""
        url = as_location(location)
        probe = PostgresGallery(url, connect(url, write=False), False)  # type: ignore[arg-type]
        with probe:
            return database_errors(PostgresGallery._exists)(probe)

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """BEGIN … COMMIT (READ COMMITTED), rolled back on any error: all or nothing.

        The first write to a gallery of an older schema upgrades it in the
        same transaction (``pgschema``): both happen, or neither.
        """
        try:
            with self._conn.transaction():
                if self.version < pgschema.SCHEMA_VERSION:
                    self._conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_KEY, SCHEMA_LOCK))
                    (version,) = self._conn.execute("SELECT value FROM facecli.meta WHERE key = 'schema'").fetchone()
                    pgschema.upgrade(self._conn, int(version))
                yield self._conn
        except psycopg.Error as exc:
            raise GalleryError(self.location, f"cannot write: {one_line(exc, self.url.url)}") from None
        self.version = pgschema.SCHEMA_VERSION
        self._matrix = None
        self._changed()

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[psycopg.Connection]:
        """A read-only REPEATABLE READ transaction: several statements see one state of the gallery."""
        with self._conn.transaction():
            self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield self._conn

    # -- reading ---------------------------------------------------------
    @database_errors
    def meta(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT key, value FROM facecli.meta").fetchall())

    @property
    def model(self) -> str:
        return self._model  # fixed for the gallery's life: read once when opened

    @property
    def dim(self) -> int:
        return self._dim

    @database_errors
    def set_fpir(self, fpir: float | None) -> None:
        """Store (or with None, forget) the gallery's FPIR target."""
        if fpir is not None and not 0 < fpir < 1:
            raise BadValue("fpir", fpir, "must be between 0 and 1")
        with self.transaction() as conn:
            if fpir is None:
                conn.execute("DELETE FROM facecli.meta WHERE key = 'fpir'")
            else:
                conn.execute("INSERT INTO facecli.meta VALUES ('fpir', %s) "
                             "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (repr(float(fpir)),))

    @database_errors
    def set_head(self, head: HeadRecord | None) -> None:
        """Record (or with None, forget) the head this gallery is used with: two meta rows, one transaction."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM facecli.meta WHERE key IN ('head_sha256', 'head_path')")
            if head is not None:
                with conn.cursor() as cur:
                    cur.executemany("INSERT INTO facecli.meta VALUES (%s, %s)",
                                    [("head_sha256", head.sha256), ("head_path", head.path)])

    @database_errors
    def persons(self) -> list[PersonInfo]:
        rows = self._conn.execute(
            "SELECT p.name, COUNT(t.id), p.created FROM facecli.persons p "
            "LEFT JOIN facecli.templates t ON t.person_id = p.id GROUP BY p.id "
            'ORDER BY p.name COLLATE "C"').fetchall()
        return [PersonInfo(name, int(n), created) for name, n, created in rows]

    @database_errors
    def person_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM facecli.persons").fetchone()[0])

    @database_errors
    def has_person(self, name: str) -> bool:
        return self._conn.execute("SELECT 1 FROM facecli.persons WHERE name = %s", (name,)).fetchone() is not None

    @database_errors
    def templates_of(self, name: str) -> list[dict]:
        rows = self._conn.execute(
            "SELECT t.id, t.source, t.sha256, t.box, t.created FROM facecli.templates t "
            "JOIN facecli.persons p ON p.id = t.person_id WHERE p.name = %s ORDER BY t.id", (name,)).fetchall()
        return [{"id": i, "source": s, "sha256": h, "box": stored_box(b, i, self.location), "created": c}
                for i, s, h, b, c in rows]

    @database_errors
    def embeddings_of(self, name: str) -> np.ndarray:
        rows = self._conn.execute(
            "SELECT t.id, t.embedding FROM facecli.templates t JOIN facecli.persons p ON p.id = t.person_id "
            "WHERE p.name = %s ORDER BY t.id", (name,), binary=True).fetchall()
        return self._stack([r[1] for r in rows], [r[0] for r in rows])

    @database_errors
    def template_matrix(self) -> TemplateMatrix:
        """Every template in one matrix, read once per process (one statement: one consistent state)."""
        if self._matrix is None:
            self._matrix = self._matrix_of(self._conn.execute(
                "SELECT p.name, t.embedding, t.id FROM facecli.templates t "
                'JOIN facecli.persons p ON p.id = t.person_id ORDER BY p.name COLLATE "C", t.id',
                binary=True).fetchall())
        return self._matrix

    @database_errors
    def state(self) -> GalleryState:
        with self._snapshot() as conn:
            meta = self.meta()
            count, max_id = conn.execute(
                "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM facecli.templates").fetchone()
        return GalleryState(self.model, self.dim, int(count), int(max_id), int(meta.get("removals", "0")))

    @database_errors
    def iter_embeddings(self, after_id: int = 0, chunk: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(template ids, float32 embeddings) in id order, ``chunk`` rows at a time, from ``after_id`` on."""
        while True:
            rows = self._conn.execute(
                "SELECT id, embedding FROM facecli.templates WHERE id > %s ORDER BY id LIMIT %s",
                (int(after_id), int(chunk)), binary=True).fetchall()
            if not rows:
                return
            ids = [r[0] for r in rows]
            yield np.array(ids, dtype=np.int64), self._stack([r[1] for r in rows], ids)
            after_id = rows[-1][0]

    @database_errors
    def templates_by_id(self, ids: np.ndarray, whole_persons: bool = False) -> TemplateMatrix:
        """The templates with these ids (or, ``whole_persons``, all templates of their persons),
        as a TemplateMatrix (rows grouped by person); one statement, so whole persons are whole."""
        chosen = "t.id = ANY(%s)" if not whole_persons else \
            "t.person_id IN (SELECT person_id FROM facecli.templates WHERE id = ANY(%s))"
        rows = self._conn.execute(
            "SELECT p.name, t.embedding, t.id FROM facecli.templates t JOIN facecli.persons p ON p.id = t.person_id "
            f'WHERE {chosen} ORDER BY p.name COLLATE "C", t.id', ([int(i) for i in ids],), binary=True).fetchall()
        return self._matrix_of(rows)

    @database_errors
    def sources_of(self, ids: list[int]) -> dict[int, dict]:
        """Template id -> its source photo, content hash, face box and when it was enrolled."""
        rows = self._conn.execute("SELECT id, source, sha256, box, created FROM facecli.templates "
                                  "WHERE id = ANY(%s)", ([int(i) for i in ids],)).fetchall()
        return {i: {"source": s, "sha256": h, "box": stored_box(b, i, self.location), "created": c}
                for i, s, h, b, c in rows}

    @database_errors
    def unused_names(self, prefix: str, count: int) -> list[str]:
        """``count`` names ``prefix1``, ``prefix2``… after the highest one already enrolled."""
        # ILIKE with the prefix as the pattern, as the file's LIKE (case-insensitive for ASCII)
        taken = [name[len(prefix):] for (name,) in self._conn.execute(
            "SELECT name FROM facecli.persons WHERE name ILIKE %s || '%%'", (prefix,)).fetchall()]
        start = max([int(t) for t in taken if t.isdigit()], default=0)
        return [f"{prefix}{start + k}" for k in range(1, count + 1)]

    def _stack(self, blobs: list[bytes], ids: list[int]) -> np.ndarray:
        """pgvector's binary vectors (4-byte header, big-endian float32s) as one float32 matrix, each template
        checked as the file checks its own (``base.checked_matrix``): a damaged one is an error naming it."""
        dim = self.dim
        width = 4 + 4 * dim
        if all(len(b) == width for b in blobs):
            if not blobs:
                return np.empty((0, dim), dtype=np.float32)
            raw = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), width)[:, 4:]
            return checked_matrix(np.ascontiguousarray(raw).view(">f4").astype(np.float32), ids, self.location)
        # a vector of another size (its column's type was changed): named as the file names a wrong size
        return stack_templates([np.frombuffer(b[4:4 + (len(b) - 4) // 4 * 4], ">f4").astype("<f4").tobytes()
                                for b in blobs], ids, dim, self.location)

    # -- 1:N in the database ---------------------------------------------
    def search_index(self, log: Callable[[str], None] = lambda _m: None) -> DatabaseIndex:
        """pgvector's HNSW index, which the database keeps up to date with every write: nothing to build here.
        Queried as the gallery's own index was built (its settings are in meta)."""
        return DatabaseIndex(self, self._index["kind"] if self._index else "vector", self.ef_search)

    @database_errors
    def set_index(self, kind: str | None = HNSW["kind"], m: int = HNSW["m"],
                  ef_construction: int = HNSW["ef_construction"]) -> None:
        """Rebuild the HNSW index with these settings (``kind`` None: no index; searches above ``exact_max``
        then scan the table), in one transaction, and record them in meta.

        Building locks the templates against writes and reads until it commits: minutes at 100 000
        templates, more than half an hour at a million (bench/RESULTS.md). What a larger graph buys in
        recall is measured by ``bench/pgvector_search.py --variants``.
        """
        settings = None if kind is None else pgschema.check_index({"kind": kind, "m": m,
                                                                   "ef_construction": ef_construction})
        if kind is not None and settings is None:
            raise BadValue("index", f"{kind}:{m}:{ef_construction}",
                           f"kind is one of {', '.join(pgschema.INDEX_KINDS)}; m and ef_construction 2 to 1000")
        with self.transaction() as conn:
            conn.execute("DROP INDEX IF EXISTS facecli.templates_hnsw")
            if settings is None:
                conn.execute("DELETE FROM facecli.meta WHERE key = 'hnsw'")
            else:
                conn.execute(pgschema.index_sql(settings, self.dim))
                conn.execute("INSERT INTO facecli.meta VALUES ('hnsw', %s) "
                             "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (json.dumps(settings),))
        self._index = settings

    # -- writing ---------------------------------------------------------
    @database_errors
    def enroll(self, entries: Iterable[tuple[str, Template]]) -> list[Stored]:
        """Add (name, template) pairs in one transaction; new names become persons.

        A photo (by content hash) already enrolled for that person is skipped,
        not duplicated; one enrolled under another name is refused (``taken``):
        one photo, one person. Enrolls are serialised (an advisory lock held
        until commit), so two of them cannot give one photo to two people.
        """
        entries = list(entries)
        if not entries:
            return []
        now = time.time()
        stored: list[Stored | None] = []
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_KEY, ENROLL_LOCK))
            holders: dict[str, set[str]] = {}
            for sha, name in conn.execute(
                    "SELECT t.sha256, p.name FROM facecli.templates t JOIN facecli.persons p ON p.id = t.person_id "
                    "WHERE t.sha256 = ANY(%s)", (sorted({t.sha256 for _, t in entries}),)).fetchall():
                holders.setdefault(sha, set()).add(name)
            todo: list[tuple[int, str, Template]] = []
            first: dict[str, float] = {}  # a new person's creation: their earliest template's
            for name, t in entries:
                others = holders.setdefault(t.sha256, set()) - {name}
                if others:
                    stored.append(Stored("taken", min(others)))
                    continue
                holders[t.sha256].add(name)
                todo.append((len(stored), name, t))
                stored.append(None)
                first[name] = min(first.get(name, np.inf), now if t.created is None else t.created)
            if todo:
                # new persons are inserted, existing ones locked (DO UPDATE), in name order: a concurrent remove
                # of one of them waits for this enroll
                names = sorted(first)
                person = dict(conn.execute(
                    "INSERT INTO facecli.persons (name, created) SELECT * FROM unnest(%s::text[], %s::float8[]) "
                    "ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING name, id",
                    (names, [first[n] for n in names])).fetchall())
                rows = [(person[name], self.model, np.asarray(t.embedding, dtype=np.float32), t.source, t.sha256,
                         json.dumps([round(v, 1) for v in t.box]), now if t.created is None else t.created,
                         person[name], t.sha256) for _, name, t in todo]
                with conn.cursor() as cur:
                    # NOT EXISTS first: a photo already there draws no id, so ids follow the file's (1, 2, 3 …)
                    cur.executemany(
                        "INSERT INTO facecli.templates (person_id, model, embedding, source, sha256, box, created) "
                        "SELECT %s, %s, %s, %s, %s, %s, %s WHERE NOT EXISTS "
                        "(SELECT 1 FROM facecli.templates WHERE person_id = %s AND sha256 = %s) "
                        "ON CONFLICT (person_id, sha256) DO NOTHING RETURNING id", rows, returning=True)
                    for i, _, _ in todo:
                        stored[i] = Stored("added" if cur.fetchone() is not None else "present")
                        cur.nextset()
        return stored  # type: ignore[return-value]

    @database_errors
    def remove(self, name: str) -> int:
        """Delete a person and their templates; returns the number of templates removed."""
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM facecli.persons WHERE name = %s FOR UPDATE", (name,)).fetchone()
            if row is None:
                raise GalleryError(name, f"no such person in {self.location}")
            n = conn.execute("DELETE FROM facecli.templates WHERE person_id = %s", row).rowcount
            conn.execute("DELETE FROM facecli.persons WHERE id = %s", row)
            # counted as the file counts them (GalleryState.removals)
            conn.execute("INSERT INTO facecli.meta VALUES ('removals', '1') ON CONFLICT (key) "
                         "DO UPDATE SET value = (CAST(facecli.meta.value AS bigint) + 1)::text")
        return n

    @database_errors
    def _rename(self, old: str, new: str) -> None:
        try:
            with self.transaction() as conn:
                if conn.execute("SELECT 1 FROM facecli.persons WHERE name = %s", (new,)).fetchone():
                    raise GalleryError(new, "a person with this name is already enrolled")
                if conn.execute("UPDATE facecli.persons SET name = %s WHERE name = %s", (new, old)).rowcount == 0:
                    raise GalleryError(old, f"no such person in {self.location}")
        except GalleryError as exc:
            if isinstance(exc.__context__, psycopg.errors.UniqueViolation):  # enrolled meanwhile by another
                raise GalleryError(new, "a person with this name is already enrolled") from None
            raise

    # -- maintenance -----------------------------------------------------
    @database_errors
    def check(self) -> list[str]:
        """Everything wrong with the gallery: an invalid or missing index, rows without their person, foreign
        schema objects, templates that do not fit the model or cannot be matched against, malformed boxes,
        persons without templates; [] when sound."""
        problems: list[str] = []
        with self._snapshot() as conn:
            valid = conn.execute("SELECT i.indisvalid FROM pg_catalog.pg_index i "
                                 "WHERE i.indexrelid = to_regclass('facecli.templates_hnsw')").fetchone()
            if valid is not None and not valid[0]:
                problems.append("index templates_hnsw is invalid (REINDEX it)")
            problems += self.foreign
            if any(p.startswith(("table", "column")) and p.endswith(("is missing", "has been changed"))
                   for p in self.foreign):
                return problems  # the rows cannot be read as facecli wrote them
            if (problem := head_problem(self.meta())) is not None:
                problems.append(problem)
            orphans = conn.execute("SELECT COUNT(*) FROM facecli.templates t WHERE NOT EXISTS "
                                   "(SELECT 1 FROM facecli.persons p WHERE p.id = t.person_id)").fetchone()[0]
            if orphans:
                problems.append(f"foreign key violation in templates ({orphans} rows)")
            for model, n in conn.execute("SELECT model, COUNT(*) FROM facecli.templates GROUP BY model "
                                         'ORDER BY model COLLATE "C"').fetchall():
                if model != self.model:
                    problems.append(f"{n} templates from model {model}, the gallery is for {self.model}")
            rows = conn.execute(
                "SELECT t.id, p.name, vector_dims(t.embedding), vector_norm(t.embedding), t.box "
                "FROM facecli.templates t JOIN facecli.persons p ON p.id = t.person_id ORDER BY t.id").fetchall()
            for tid, name, size, norm, box in rows:
                if size != self.dim:
                    problems.append(f"template {tid} of {name}: {size} values, expected {self.dim}")
                elif not abs(norm - 1.0) < 1e-3:
                    problems.append(f"template {tid} of {name}: norm {norm:.4f}, expected 1")
                if (problem := box_problem(box)) is not None:
                    problems.append(f"template {tid} of {name}: {problem}")
            empty = conn.execute("SELECT name FROM facecli.persons p WHERE NOT EXISTS "
                                 "(SELECT 1 FROM facecli.templates t WHERE t.person_id = p.id) "
                                 'ORDER BY name COLLATE "C"').fetchall()
        problems += [f"person {name} has no template" for (name,) in empty]
        return problems

    @database_errors
    def stats(self) -> dict:
        with self._snapshot() as conn:
            n_templates = conn.execute("SELECT COUNT(*) FROM facecli.templates").fetchone()[0]
            persons = self.person_count()
            size = conn.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_catalog.pg_class c "
                "WHERE c.relnamespace = 'facecli'::regnamespace AND c.relkind = 'r'").fetchone()[0]
        return {
            "gallery": self.location,
            "model": self.model,
            "dim": self.dim,
            "schema": self.version,
            "persons": persons,
            "templates": int(n_templates),
            "bytes": int(size or 0),
        }


class DatabaseIndex:
    """Candidates from pgvector's HNSW index, for ``search.Searcher`` (which re-ranks them exactly)."""

    def __init__(self, gallery: PostgresGallery, kind: str = HNSW["kind"], ef_search: int = EF_SEARCH) -> None:
        self.gallery = gallery
        self.query = pgschema.nearest_sql(kind, gallery.dim)
        self.ef_search = ef_search

    def candidates(self, faces: np.ndarray, count: int) -> np.ndarray:
        """Template ids of the ``count`` nearest templates of each face, by the index (one statement a face,
        each seeing one committed state; the whole persons are then read in one statement by templates_by_id)."""
        if count <= 0 or len(faces) == 0:
            return np.empty(0, dtype=np.int64)
        found: set[int] = set()
        conn = self.gallery._conn
        try:
            with conn.transaction():
                # the walk must be at least as broad as the answer, or rows go missing; and the planner must not
                # swap the index for a scan of the whole table: pgvector's cost estimate grows with ef_search,
                # and at 100 000 templates with ef_search 256 it chose a sequential scan (exact, 30x slower)
                conn.execute("SELECT set_config('hnsw.ef_search', %s, true), set_config('enable_seqscan', 'off', true)",
                             (str(max(self.ef_search, count)),))
                for face in np.asarray(faces, dtype=np.float32):
                    found.update(r[0] for r in conn.execute(self.query, (face, int(count))).fetchall())
        except psycopg.Error as exc:
            raise GalleryError(self.gallery.location, f"database error: {one_line(exc, self.gallery.url.url)}") \
                from None
        return np.array(sorted(found), dtype=np.int64)
