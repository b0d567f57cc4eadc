"""The gallery in PostgreSQL with pgvector: one gallery for many processes on many hosts.

Selected by a location ``postgresql://user@host:port/dbname`` (or ``postgres://``)
wherever a gallery file is accepted, and it behaves as the file does: the
same ``store.Gallery``, the same queries (``dialect``), answers and errors.
The URL goes to libpq unchanged, so ``PGPASSWORD``, ``~/.pgpass``,
``sslmode`` and every other libpq parameter and variable work as libpq
defines them; a password written in the URL is masked wherever the location
is shown and in every driver message passed on (``pgconnect``).

Everything lives in the schema ``facecli`` of the database (one gallery per
database): ``meta`` (model, dim, schema version, index settings, fpir …),
``persons``, ``templates``, whose embeddings are ``vector(dim)`` (float32:
exactly what facecli computed, so distances re-ranked here are exact), and
``schema_history``. An HNSW index on them (inner product; the embeddings are
unit vectors) proposes candidates above ``search.EXACT_MAX`` templates, and
facecli recomputes their distances in float32 (``search.Searcher``).

What is this backend's own: the connection; enrolls and schema upgrades
serialised by advisory locks (as the file serialises its writers); several
reads in one REPEATABLE READ snapshot; read-only transactions for a gallery
opened only to read (a role with nothing but SELECT serves every read); the
catalogue check (``describe``); pgvector's index. SQL is fixed text with bound
parameters; the only composed parts are integers and the index kind, one of
two fixed words.

psycopg is imported only when a database is used (the ``postgres`` extra, ``extras.install_hint``).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg

from facecli.errors import BadValue, GalleryError
from facecli.gallery import schema
from facecli.gallery.backend import Backend, lock_timeout
from facecli.gallery.dialect import POSTGRES
from facecli.gallery.locations import DatabaseURL
from facecli.gallery.pgconnect import connect, one_line, register_vector

if TYPE_CHECKING:
    from facecli.gallery.store import Gallery

#: Advisory locks (per database): (LOCK_KEY, SCHEMA_LOCK) serialises creating and upgrading the schema,
#: (LOCK_KEY, ENROLL_LOCK) enrolls ("FCLI").
LOCK_KEY, SCHEMA_LOCK, ENROLL_LOCK = 0x46434C49, 0, 1
#: HNSW index settings of a new gallery (bench/pgvector_search.py measured them; see bench/RESULTS.md): the
#: vectors the graph holds (``halfvec``: float16, half the size of ``vector``'s float32), its degree and its
#: build breadth. A gallery keeps its own in meta (``set_index`` changes them).
HNSW = {"kind": "halfvec", "m": 16, "ef_construction": 64}
INDEX_KINDS = ("vector", "halfvec")  # the vectors the HNSW graph holds: float32, or float16 (half the size)
#: Breadth of each query's graph walk (never below the number of candidates asked for).
EF_SEARCH = 256


class PostgresBackend(Backend):
    dialect = POSTGRES

    def __init__(self, url: DatabaseURL, conn: psycopg.Connection) -> None:
        self.url = url
        self.location = str(url)  # the URL with its password masked: what every message shows
        self.index: dict[str, Any] | None = None  # the HNSW index's settings (meta hnsw)
        self.vector_schema = ""  # pgvector's schema, quoted: its types and operators are named through it
        self.ef_search = EF_SEARCH  # breadth of the index's graph walk for this connection's searches
        self._conn = conn

    # -- opening -------------------------------------------------------------------
    @classmethod
    def connect(cls, url: DatabaseURL, write: bool) -> PostgresBackend:
        """A connection to the database (read-only transactions unless ``write``), holding a gallery or not."""
        return cls(url, connect(url, write))

    def exists(self) -> bool:
        """Whether the database holds a facecli gallery (the schema ``facecli`` with its meta table)."""
        with self.errors():
            schema_there, meta = self._conn.execute(
                "SELECT pg_catalog.to_regnamespace('facecli') IS NOT NULL, "
                "pg_catalog.to_regclass('facecli.meta') IS NOT NULL").fetchone()
        if schema_there and not meta:
            raise GalleryError(self.location, "not a facecli gallery (its schema facecli holds something else)")
        return bool(meta)

    @property
    def vector_type(self) -> str:
        return f"{self.vector_schema}.vector"

    def open(self, strict: bool = True) -> list[str]:
        """Use the gallery in the database: the schema objects in it facecli did not make (refused when
        ``strict``). Refuses a schema facecli that holds something else, one from a newer schema, and one that
        another role could plant objects in."""
        with self.errors():
            self._use_extension()
            self._check_schemas()
            meta = dict(self._conn.execute("SELECT key, value FROM facecli.meta").fetchall())
            version = int(meta["schema"]) if meta.get("schema", "").isdigit() else 0
            if "model" not in meta or not meta.get("dim", "").isdigit() or version < 1:
                raise GalleryError(self.location, "not a facecli gallery (its schema facecli holds something else)")
            if version not in schema.READABLE:
                raise GalleryError(self.location, f"written by a newer facecli (schema {version}; "
                                                  f"this version reads up to {schema.SCHEMA_VERSION})")
            foreign = []
            try:
                stored = json.loads(meta["hnsw"]) if "hnsw" in meta else None
            except ValueError:
                stored = False
            self.index = check_index(stored)
            if stored is not None and self.index is None:
                foreign.append(f"meta hnsw {meta['hnsw'][:40]!r} is not an index setting facecli writes")
            foreign += self.foreign(version, int(meta["dim"]))
        if foreign and strict:
            more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
            raise GalleryError(self.location, f"{foreign[0]}{more}: refusing a gallery that may have been "
                                              "tampered with; `facecli gallery check` lists what is wrong")
        return foreign

    def create(self, model: str, dim: int) -> list[str]:
        """Create the extension (where allowed and missing) and the schema; idempotent across processes."""
        try:
            wait = lock_timeout()
            with self._conn.transaction():
                self._conn.execute("SELECT pg_catalog.set_config('lock_timeout', %s, true)",
                                   (f"{round(wait * 1000)}ms",))
                self._conn.execute("SELECT pg_catalog.pg_advisory_xact_lock(%s, %s)", (LOCK_KEY, SCHEMA_LOCK))
                if not self.exists():  # else created meanwhile by a concurrent enroll
                    if not self._conn.execute("SELECT 1 FROM pg_catalog.pg_extension "
                                              "WHERE extname = 'vector'").fetchone():
                        self._conn.execute("CREATE EXTENSION vector SCHEMA public")  # where it goes by default
                    self._use_extension()
                    schema.create(self, dim)
                    self._conn.execute(index_sql(HNSW, dim, self.vector_schema))
                    meta = {"model": model, "dim": str(dim), "created": str(time.time()), "hnsw": json.dumps(HNSW)}
                    with self._conn.cursor() as cur:
                        cur.executemany("INSERT INTO facecli.meta VALUES (%s, %s)", list(meta.items()))
        except psycopg.errors.LockNotAvailable:
            raise GalleryError(self.location, f"cannot create the gallery: the database stayed locked by another "
                                              f"connection for {wait:g} s (FACECLI_LOCK_TIMEOUT sets the wait)") \
                from None
        except psycopg.errors.InsufficientPrivilege as exc:
            hint = ("the pgvector extension is not installed and this role may not install it "
                    "(a superuser runs: CREATE EXTENSION vector)" if "extension" in str(exc)
                    else f"cannot create the gallery: {one_line(exc, self.url.url)}")
            raise GalleryError(self.location, hint) from None
        except psycopg.Error as exc:
            raise GalleryError(self.location, f"cannot create the gallery: {one_line(exc, self.url.url)}") \
                from None
        return self.open()

    def _use_extension(self) -> None:
        """Find pgvector's schema (wherever it was installed) and teach the connection its binary form. Its types
        and operators are then always named through that schema (``OPERATOR(public.<#>)``), and nothing else is
        found through the search path, which ``pgconnect.connect`` pins to pg_catalog."""
        row = self._conn.execute(
            "SELECT n.nspname, t.oid FROM pg_catalog.pg_extension e "
            "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
            "JOIN pg_catalog.pg_type t ON t.typnamespace = n.oid AND t.typname = 'vector' "
            "WHERE e.extname = 'vector'").fetchone()
        if row is None:
            raise GalleryError(self.location, "the pgvector extension is not installed in this database "
                                              "(a superuser runs: CREATE EXTENSION vector)")
        extension_schema, oid = row
        (self.vector_schema,) = self._conn.execute("SELECT pg_catalog.quote_ident(%s)", (extension_schema,)).fetchone()
        register_vector(self._conn, oid)

    def _check_schemas(self) -> None:
        """Refuse a gallery whose schema, or pgvector's, another role may create objects in: a function or operator
        planted there (an overload that matches facecli's arguments better) would run inside facecli's statements
        with this role's rights. The schema's owner, superusers and this role's own roles are trusted."""
        public = self._conn.execute(
            "SELECT n.nspname FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a "
            "WHERE n.oid OPERATOR(pg_catalog.=) ANY(ARRAY['facecli'::regnamespace, %s::regnamespace]) "
            "AND a.grantee OPERATOR(pg_catalog.=) 0 AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE' "
            "ORDER BY 1 LIMIT 1", (self.vector_schema,)).fetchone()
        if public is not None:  # PostgreSQL 14 and older grant it on public by default
            raise GalleryError(self.location, f"every role can create objects in the schema {public[0]}, which "
                                              "facecli's statements use: refusing a gallery others can plant code "
                                              f"in (REVOKE CREATE ON SCHEMA {public[0]} FROM PUBLIC)")
        row = self._conn.execute(
            "SELECT n.nspname, r.rolname FROM pg_catalog.pg_namespace n CROSS JOIN pg_catalog.pg_roles r "
            "WHERE n.oid OPERATOR(pg_catalog.=) ANY(ARRAY['facecli'::regnamespace, %s::regnamespace]) "
            "AND NOT r.rolsuper AND r.rolname !~ '^pg_' "
            "AND pg_catalog.has_schema_privilege(r.oid, n.oid, 'CREATE') "
            "AND NOT pg_catalog.pg_has_role(r.oid, n.nspowner, 'MEMBER') "
            "AND NOT pg_catalog.pg_has_role(CURRENT_USER, r.oid, 'MEMBER') "
            "ORDER BY n.nspname, r.rolname LIMIT 1", (self.vector_schema,)).fetchone()
        if row is not None:
            raise GalleryError(self.location, f"the role {row[1]} can create objects in the schema {row[0]}, which "
                                              "facecli's statements use: refusing a gallery others can plant code "
                                              f"in (REVOKE CREATE ON SCHEMA {row[0]} FROM {row[1]})")

    # -- running -------------------------------------------------------------------
    def run(self, sql: str, params: tuple | list = (), vectors: bool = False) -> Any:
        return self._conn.execute(sql, params, binary=vectors)

    def run_each(self, sql: str, rows: list[tuple]) -> list[tuple | None]:
        found: list[tuple | None] = []
        with self._conn.cursor() as cur:
            cur.executemany(sql, rows, returning=True)  # pipelined: one round trip, not one per row
            for _ in rows:
                found.append(cur.fetchone())
                cur.nextset()
        return found

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN … COMMIT (READ COMMITTED), rolled back on any error: all or nothing. A lock it waits for (another
        writer's, or one anyone took on facecli's advisory keys) is waited for ``lock_timeout()`` at most."""
        wait = lock_timeout()
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_catalog.set_config('lock_timeout', %s, true)",
                                   (f"{round(wait * 1000)}ms",))
                yield
        except psycopg.errors.LockNotAvailable:
            raise GalleryError(self.location, f"cannot write: the gallery stayed locked by another connection for "
                                              f"{wait:g} s (FACECLI_LOCK_TIMEOUT sets the wait)") from None
        except psycopg.Error as exc:
            raise GalleryError(self.location, f"cannot write: {one_line(exc, self.url.url)}") from None

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read-only REPEATABLE READ transaction: several statements see one state of the gallery."""
        if self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            yield
            return
        with self._conn.transaction():
            self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield

    @contextlib.contextmanager
    def errors(self, doing: str = "database error") -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            raise GalleryError(self.location, f"{doing}: {one_line(exc, self.url.url)}") from None

    def schema_version(self, writing: bool = False) -> int:
        if writing:
            self._conn.execute("SELECT pg_catalog.pg_advisory_xact_lock(%s, %s)", (LOCK_KEY, SCHEMA_LOCK))
        row = self._conn.execute("SELECT value FROM facecli.meta WHERE key = 'schema'").fetchone()
        return int(row[0]) if row and row[0].isdigit() else 0

    def set_version(self, version: int) -> None:
        self._conn.execute("INSERT INTO facecli.meta VALUES ('schema', %s) "
                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(int(version)),))

    def lock_enrolls(self) -> None:
        self._conn.execute("SELECT pg_catalog.pg_advisory_xact_lock(%s, %s)", (LOCK_KEY, ENROLL_LOCK))

    def integrity(self, rows: bool = True) -> list[str]:
        problems = []
        valid = self._conn.execute("SELECT i.indisvalid FROM pg_catalog.pg_index i "
                                   "WHERE i.indexrelid = pg_catalog.to_regclass('facecli.templates_hnsw')").fetchone()
        if valid is not None and not valid[0]:
            problems.append("index templates_hnsw is invalid (REINDEX it)")
        if not rows:
            return problems
        orphans = self._conn.execute("SELECT COUNT(*) FROM facecli.templates t WHERE NOT EXISTS "
                                     "(SELECT 1 FROM facecli.persons p WHERE p.id = t.person_id)").fetchone()[0]
        if orphans:
            problems.append(f"foreign key violation in templates ({orphans} rows)")
        return problems

    def foreign(self, version: int, dim: int) -> list[str]:
        """What the schema holds that facecli did not create at ``version`` (or lacks, or has changed): [] when
        none. The columns and constraints of a table that is itself missing or foreign are not listed one by
        one: the table says it.

        A trigger, rule or policy on its tables, a view standing in for one of
        them, a changed column, a function or type in the schema would let
        someone make strangers match, or hide people, without touching a template.
        """
        expected = schema.catalogue(version, dim)
        if self.index is not None:
            expected[("index", "templates_hnsw")] = index_definition(self.index, dim)
        found = describe(self._conn, self.vector_schema)
        tables = {n for (k, n) in found if k == "table"} & {n for (k, n) in expected if k == "table"}

        def listed(key: tuple[str, str]) -> bool:
            kind, name = key
            if kind in ("column", "constraint"):
                return (name.split(".")[0] if kind == "column" else name.rpartition(" on ")[2]) in tables
            return True

        problems = [f"{k} {n} was not created by facecli" for (k, n) in sorted(found.keys() - expected.keys())
                    if listed((k, n))]
        problems += [f"{k} {n} is missing" for (k, n) in sorted(expected.keys() - found.keys()) if listed((k, n))]
        problems += [f"{k} {n} has been changed" for (k, n) in sorted(found.keys() & expected.keys())
                     if found[(k, n)] != expected[(k, n)]]
        return problems

    def size(self) -> int:
        size = self._conn.execute("SELECT sum(pg_catalog.pg_total_relation_size(c.oid)) FROM pg_catalog.pg_class c "
                                  "WHERE c.relnamespace = 'facecli'::regnamespace AND c.relkind = 'r'").fetchone()[0]
        return int(size or 0)

    def search_index(self, gallery: Gallery, log: Callable[[str], None]) -> DatabaseIndex:
        """pgvector's HNSW index, which the database keeps up to date with every write: nothing to build here.
        Queried as the gallery's own index was built (its settings are in meta)."""
        return DatabaseIndex(self, self.index["kind"] if self.index else "vector", gallery.dim)

    def close(self) -> None:
        self._conn.close()


def open_database(url: DatabaseURL, create: bool, write: bool,
                  strict: bool) -> tuple[PostgresBackend, list[str]] | PostgresBackend:
    """The database's gallery and its foreign objects; or, when there is none yet and ``create``, the connection
    alone, kept for ``create`` at the first write (one connection for the whole command)."""
    db = PostgresBackend.connect(url, write or create)
    try:
        if db.exists():
            return db, db.open(strict)
        if not create:
            raise GalleryError(db.location, "no gallery here yet; enroll someone first (facecli enroll NAME PHOTO)")
    except BaseException:
        db.close()
        raise
    return db


def set_index(gallery: Gallery, kind: str | None = HNSW["kind"], m: int = HNSW["m"],
              ef_construction: int = HNSW["ef_construction"]) -> None:
    """Rebuild a database gallery's HNSW index with these settings (``kind`` None: no index; searches above
    ``search.EXACT_MAX`` then scan the table), in one transaction, and record them in meta.

    Building locks the templates against writes and reads until it commits: minutes at 100 000
    templates, more than half an hour at a million (bench/RESULTS.md). What a larger graph buys in
    recall is measured by ``bench/pgvector_search.py --variants``.
    """
    settings = None if kind is None else check_index({"kind": kind, "m": m, "ef_construction": ef_construction})
    if kind is not None and settings is None:
        raise BadValue("index", f"{kind}:{m}:{ef_construction}",
                       f"kind is one of {', '.join(INDEX_KINDS)}; m and ef_construction 2 to 1000")
    with gallery._write():  # a new gallery is created first
        db = _backend(gallery)
        db.run("DROP INDEX IF EXISTS facecli.templates_hnsw")
        db.run("DELETE FROM facecli.meta WHERE key = 'hnsw'")
        if settings is not None:
            db.run(index_sql(settings, gallery.dim, db.vector_schema))
            db.run("INSERT INTO facecli.meta VALUES ('hnsw', %s)", (json.dumps(settings),))
    db.index = settings


def set_ef_search(gallery: Gallery, ef_search: int) -> None:
    """The breadth of the index's graph walk for this open gallery's searches (``EF_SEARCH`` by default)."""
    _backend(gallery).ef_search = int(ef_search)
    gallery._derived.clear()  # searchers made before hold the old breadth


def _backend(gallery: Gallery) -> PostgresBackend:
    if not isinstance(gallery._db, PostgresBackend):
        raise GalleryError(gallery.location, "not a PostgreSQL gallery")
    return gallery._db


# -- the index ---------------------------------------------------------------------------------
def check_index(settings: Any) -> dict[str, Any] | None:
    """HNSW settings as stored in meta (``{"kind", "m", "ef_construction"}``), or None when they are not."""
    if not (isinstance(settings, dict) and set(settings) == {"kind", "m", "ef_construction"}
            and settings["kind"] in INDEX_KINDS
            and all(type(settings[k]) is int and 2 <= settings[k] <= 1000 for k in ("m", "ef_construction"))):
        return None
    return settings


def index_sql(settings: dict[str, Any], dim: int, vs: str) -> str:
    """CREATE INDEX for the HNSW index on inner product (the embeddings are unit vectors); ``vs``: pgvector's
    schema, quoted."""
    kind, m, efc = settings["kind"], int(settings["m"]), int(settings["ef_construction"])
    if kind not in INDEX_KINDS:
        raise ValueError(f"index kind {kind!r}")
    column = "embedding" if kind == "vector" else f"(embedding::{vs}.halfvec({int(dim)}))"
    return (f"CREATE INDEX templates_hnsw ON facecli.templates USING hnsw ({column} {vs}.{kind}_ip_ops) "
            f"WITH (m = {m}, ef_construction = {efc})")


def index_definition(settings: dict[str, Any], dim: int) -> str:
    """The index as the catalogue shows it (``describe``)."""
    column = "embedding" if settings["kind"] == "vector" else f"((embedding)::halfvec({int(dim)}))"
    return (f"CREATE INDEX templates_hnsw ON facecli.templates USING hnsw ({column} {settings['kind']}_ip_ops) "
            f"WITH (m='{int(settings['m'])}', ef_construction='{int(settings['ef_construction'])}')")


class DatabaseIndex:
    """Candidates from pgvector's HNSW index, for ``search.Searcher`` (which re-ranks them exactly)."""

    def __init__(self, db: PostgresBackend, kind: str, dim: int) -> None:
        if kind not in INDEX_KINDS:
            raise ValueError(f"index kind {kind!r}")
        vs, d = db.vector_schema, int(dim)
        order = f"embedding OPERATOR({vs}.<#>) %s" if kind == "vector" else \
            f"embedding::{vs}.halfvec({d}) OPERATOR({vs}.<#>) %s::{vs}.vector::{vs}.halfvec({d})"
        self.query = f"SELECT id FROM facecli.templates ORDER BY {order} LIMIT %s"
        self.db = db

    def candidates(self, faces: np.ndarray, count: int) -> np.ndarray:
        """Template ids of the ``count`` nearest templates of each face, by the index (one statement a face,
        each seeing one committed state; the whole persons are then read in one statement)."""
        if count <= 0 or len(faces) == 0:
            return np.empty(0, dtype=np.int64)
        found: set[int] = set()
        conn = self.db._conn
        with self.db.errors(), conn.transaction():
            # the walk must be at least as broad as the answer, or rows go missing; and the planner must not
            # swap the index for a scan of the whole table: pgvector's cost estimate grows with ef_search,
            # and at 100 000 templates with ef_search 256 it chose a sequential scan (exact, 30x slower)
            conn.execute("SELECT pg_catalog.set_config('hnsw.ef_search', %s, true), "
                         "pg_catalog.set_config('enable_seqscan', 'off', true)",
                         (str(max(self.db.ef_search, count)),))
            for face in np.asarray(faces, dtype=np.float32):
                found.update(r[0] for r in conn.execute(self.query, (face, int(count))).fetchall())
        return np.array(sorted(found), dtype=np.int64)


# -- what a sound schema holds ------------------------------------------------------------------
_RELKINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table",
             "S": "sequence", "i": "index", "I": "partitioned index", "c": "composite type", "t": "TOAST table"}

# Each query lists one kind of object in (or on the tables of) the schema facecli as (kind, name, definition).
# With the search path on pg_catalog alone, pgvector's types print with their schema (``public.vector(640)``):
# ``describe`` drops that prefix, as ``schema.catalogue`` writes them.
_DESCRIBE = [
    """SELECT c.relkind::text, c.relname::text,
              CASE WHEN c.relkind = 'i' THEN pg_catalog.pg_get_indexdef(c.oid) ELSE '' END
       FROM pg_catalog.pg_class c WHERE c.relnamespace = 'facecli'::regnamespace""",
    """SELECT 'column', c.relname || '.' || a.attname,
              concat_ws(' ', pg_catalog.format_type(a.atttypid, a.atttypmod),
                        CASE WHEN a.attnotnull THEN 'not null' END,
                        CASE a.attidentity WHEN 'a' THEN 'identity always' WHEN 'd' THEN 'identity by default' END,
                        CASE WHEN a.attgenerated <> '' THEN 'generated' END,
                        'default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid))
       FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
       LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE c.relnamespace = 'facecli'::regnamespace AND c.relkind IN ('r', 'p') AND a.attnum > 0
         AND NOT a.attisdropped""",
    """SELECT 'row-level security on table', c.relname, ''
       FROM pg_catalog.pg_class c WHERE c.relnamespace = 'facecli'::regnamespace
         AND (c.relrowsecurity OR c.relforcerowsecurity)""",
    """SELECT 'constraint', con.conname || ' on ' || c.relname, pg_catalog.pg_get_constraintdef(con.oid)
       FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
       WHERE con.connamespace = 'facecli'::regnamespace AND con.contype <> 'n'""",
    """SELECT 'trigger', t.tgname || ' on ' || c.relname, ''
       FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
       WHERE c.relnamespace = 'facecli'::regnamespace AND NOT t.tgisinternal""",
    """SELECT 'rule', r.rulename || ' on ' || c.relname, ''
       FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
       WHERE c.relnamespace = 'facecli'::regnamespace AND r.rulename <> '_RETURN'""",
    """SELECT 'policy', p.polname || ' on ' || c.relname, ''
       FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
       WHERE c.relnamespace = 'facecli'::regnamespace""",
    """SELECT 'function', p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')', ''
       FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'facecli'::regnamespace""",
    """SELECT 'operator', o.oprname, '' FROM pg_catalog.pg_operator o
       WHERE o.oprnamespace = 'facecli'::regnamespace""",
    """SELECT 'type', t.typname, '' FROM pg_catalog.pg_type t
       WHERE t.typnamespace = 'facecli'::regnamespace AND t.typrelid = 0 AND t.typcategory <> 'A'""",
]


def describe(conn: Any, vs: str) -> dict[tuple[str, str], str]:
    """(kind, name) -> definition of everything in the schema facecli, as ``schema.catalogue`` lists them (``vs``:
    pgvector's schema, quoted, whose prefix is dropped)."""
    found: dict[tuple[str, str], str] = {}
    for query in _DESCRIBE:
        for kind, name, definition in conn.execute(query).fetchall():
            found[(_RELKINDS.get(kind, kind), name)] = " ".join((definition or "").replace(f"{vs}.", "").split())
    return found
