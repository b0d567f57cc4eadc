"""The PostgreSQL gallery's schema and its history, and what a sound one holds (``migrations`` for the file).

Everything lives in the schema ``facecli`` of one database. ``meta`` holds the
schema version under the key ``schema``. A new gallery is created at
``SCHEMA_VERSION``; an older one is upgraded by its first write, in that
write's transaction (all steps or none), each step recorded in
``schema_history``; reading needs no upgrade (every version in ``READABLE``
answers facecli's queries).

History (the same steps as the file's):

1. ``meta``, ``persons``, ``templates`` (embeddings as pgvector's ``vector(dim)``),
   and the HNSW index ``templates_hnsw``.
2. ``schema_history``; an index on ``templates(sha256)``, so a photo already
   enrolled under any name is found without a scan.

``foreign_objects`` compares what the schema holds with what facecli made:
a trigger, rule or policy on its tables, a view standing in for one of them,
a changed column, a function or type in the schema would let someone make
strangers match, or hide people, without touching a template. SQL here is
fixed text; the only composed parts are integers (the embedding size, the
index's settings) and the index kind, one of two fixed words.
"""

from __future__ import annotations

import time
from typing import Any

from facecli.version import __version__

SCHEMA_VERSION = 2
READABLE = range(1, SCHEMA_VERSION + 1)
INDEX_KINDS = ("vector", "halfvec")  # the vectors the HNSW graph holds: float32, or float16 (half the size)

_V1 = """
CREATE SCHEMA facecli;
CREATE TABLE facecli.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE facecli.persons (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    created double precision NOT NULL
);
CREATE TABLE facecli.templates (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id bigint NOT NULL REFERENCES facecli.persons(id) ON DELETE CASCADE,
    model text NOT NULL,
    embedding vector({dim}) NOT NULL,
    source text NOT NULL,
    sha256 text NOT NULL,
    box text NOT NULL,
    created double precision NOT NULL,
    UNIQUE (person_id, sha256)
);
CREATE INDEX templates_person ON facecli.templates (person_id)
"""

#: version -> the statements that bring version - 1 to it
STEPS: dict[int, str] = {
    2: """
CREATE TABLE facecli.schema_history (version integer PRIMARY KEY, applied double precision NOT NULL,
                                     facecli text NOT NULL);
CREATE INDEX templates_sha256 ON facecli.templates (sha256)
""",
}


def _statements(script: str) -> list[str]:
    return [s for s in script.split(";") if s.strip()]


def check_index(settings: Any) -> dict[str, Any] | None:
    """HNSW settings as stored in meta (``{"kind", "m", "ef_construction"}``), or None when they are not."""
    if not (isinstance(settings, dict) and set(settings) == {"kind", "m", "ef_construction"}
            and settings["kind"] in INDEX_KINDS
            and all(type(settings[k]) is int and 2 <= settings[k] <= 1000 for k in ("m", "ef_construction"))):
        return None
    return settings


def index_sql(settings: dict[str, Any], dim: int) -> str:
    """CREATE INDEX for the HNSW index on inner product (the embeddings are unit vectors)."""
    kind, m, efc = settings["kind"], int(settings["m"]), int(settings["ef_construction"])
    if kind not in INDEX_KINDS:
        raise ValueError(f"index kind {kind!r}")
    column = "embedding" if kind == "vector" else f"(embedding::halfvec({int(dim)}))"
    return (f"CREATE INDEX templates_hnsw ON facecli.templates USING hnsw ({column} {kind}_ip_ops) "
            f"WITH (m = {m}, ef_construction = {efc})")


def nearest_sql(kind: str, dim: int) -> str:
    """The query the index answers: the ids of the templates nearest one probe (bound first), so many (second)."""
    if kind not in INDEX_KINDS:
        raise ValueError(f"index kind {kind!r}")
    order = "embedding <#> %s" if kind == "vector" else \
        f"embedding::halfvec({int(dim)}) <#> %s::vector::halfvec({int(dim)})"
    return f"SELECT id FROM facecli.templates ORDER BY {order} LIMIT %s"


def create(conn: Any, dim: int, index: dict[str, Any] | None) -> None:
    """The schema as of version 1 then upgraded to ``SCHEMA_VERSION``, in the caller's transaction (meta's
    model and dim are the caller's to insert)."""
    for statement in _statements(_V1.format(dim=int(dim))):
        conn.execute(statement)
    if index is not None:
        conn.execute(index_sql(index, dim))
    conn.execute("INSERT INTO facecli.meta VALUES ('schema', '1')")
    upgrade(conn, 1)


def upgrade(conn: Any, version: int, to: int = SCHEMA_VERSION) -> None:
    """Apply every step after ``version`` up to ``to`` (in the caller's transaction) and record each one."""
    for target in range(version + 1, to + 1):
        for statement in _statements(STEPS[target]):
            conn.execute(statement)
        conn.execute("INSERT INTO facecli.schema_history VALUES (%s, %s, %s)", (target, time.time(), __version__))
        conn.execute("UPDATE facecli.meta SET value = %s WHERE key = 'schema'", (str(target),))


# -- what a sound schema holds -------------------------------------------------------------------------
_NOT_NULL = "not null"
_ID = "bigint not null identity always"


def expected_objects(version: int, dim: int, index: dict[str, Any] | None) -> dict[tuple[str, str], str]:
    """(kind, name) -> definition of every object facecli makes at ``version`` (as ``describe`` shows them)."""
    columns = {
        "meta": {"key": f"text {_NOT_NULL}", "value": f"text {_NOT_NULL}"},
        "persons": {"id": _ID, "name": f"text {_NOT_NULL}", "created": f"double precision {_NOT_NULL}"},
        "templates": {"id": _ID, "person_id": f"bigint {_NOT_NULL}", "model": f"text {_NOT_NULL}",
                      "embedding": f"vector({int(dim)}) {_NOT_NULL}", "source": f"text {_NOT_NULL}",
                      "sha256": f"text {_NOT_NULL}", "box": f"text {_NOT_NULL}",
                      "created": f"double precision {_NOT_NULL}"},
    }
    constraints = {
        "meta_pkey on meta": "PRIMARY KEY (key)",
        "persons_pkey on persons": "PRIMARY KEY (id)",
        "persons_name_key on persons": "UNIQUE (name)",
        "templates_pkey on templates": "PRIMARY KEY (id)",
        "templates_person_id_fkey on templates":
            "FOREIGN KEY (person_id) REFERENCES facecli.persons(id) ON DELETE CASCADE",
        "templates_person_id_sha256_key on templates": "UNIQUE (person_id, sha256)",
    }
    unique = "CREATE UNIQUE INDEX {} ON facecli.{} USING btree ({})"
    indexes = {
        "meta_pkey": unique.format("meta_pkey", "meta", "key"),
        "persons_pkey": unique.format("persons_pkey", "persons", "id"),
        "persons_name_key": unique.format("persons_name_key", "persons", "name"),
        "templates_pkey": unique.format("templates_pkey", "templates", "id"),
        "templates_person_id_sha256_key": unique.format("templates_person_id_sha256_key", "templates",
                                                        "person_id, sha256"),
        "templates_person": "CREATE INDEX templates_person ON facecli.templates USING btree (person_id)",
    }
    if index is not None:
        column = "embedding" if index["kind"] == "vector" else f"((embedding)::halfvec({int(dim)}))"
        indexes["templates_hnsw"] = (f"CREATE INDEX templates_hnsw ON facecli.templates USING hnsw "
                                     f"({column} {index['kind']}_ip_ops) "
                                     f"WITH (m='{int(index['m'])}', ef_construction='{int(index['ef_construction'])}')")
    if version >= 2:
        columns["schema_history"] = {"version": f"integer {_NOT_NULL}", "applied": f"double precision {_NOT_NULL}",
                                     "facecli": f"text {_NOT_NULL}"}
        constraints["schema_history_pkey on schema_history"] = "PRIMARY KEY (version)"
        indexes["schema_history_pkey"] = unique.format("schema_history_pkey", "schema_history", "version")
        indexes["templates_sha256"] = "CREATE INDEX templates_sha256 ON facecli.templates USING btree (sha256)"
    found: dict[tuple[str, str], str] = {("table", t): "" for t in columns}
    found |= {("column", f"{t}.{c}"): d for t, cols in columns.items() for c, d in cols.items()}
    found |= {("sequence", f"{t}_id_seq"): "" for t in ("persons", "templates")}
    found |= {("constraint", n): d for n, d in constraints.items()}
    found |= {("index", n): d for n, d in indexes.items()}
    return found


_RELKINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table",
             "S": "sequence", "i": "index", "I": "partitioned index", "c": "composite type", "t": "TOAST table"}

# Each query lists one kind of object in (or on the tables of) the schema facecli as (kind, name, definition).
# Run with the session's search_path on pgvector's schema alone, so types print as `vector(640)`.
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


def describe(conn: Any) -> dict[tuple[str, str], str]:
    """(kind, name) -> definition of everything in the schema facecli, as ``expected_objects`` lists them."""
    found: dict[tuple[str, str], str] = {}
    for query in _DESCRIBE:
        for kind, name, definition in conn.execute(query).fetchall():
            found[(_RELKINDS.get(kind, kind), name)] = " ".join((definition or "").split())
    return found


def foreign_objects(conn: Any, version: int, dim: int, index: dict[str, Any] | None) -> list[str]:
    """What the schema holds that facecli did not create at ``version`` (or lacks, or has changed): [] when none.

    The columns, constraints and indexes of a table that is itself missing
    or foreign are not listed one by one: the table says it.
    """
    expected = expected_objects(version, dim, index)
    found = describe(conn)
    tables = {n for (k, n) in found if k == "table"} & {n for (k, n) in expected if k == "table"}

    def listed(key: tuple[str, str]) -> bool:
        kind, name = key
        if kind in ("column", "constraint"):
            owner = name.split(".")[0] if kind == "column" else name.rpartition(" on ")[2]
            return owner in tables
        return True

    problems = [f"{k} {n} was not created by facecli" for (k, n) in sorted(found.keys() - expected.keys())
                if listed((k, n))]
    problems += [f"{k} {n} is missing" for (k, n) in sorted(expected.keys() - found.keys()) if listed((k, n))]
    problems += [f"{k} {n} has been changed" for (k, n) in sorted(found.keys() & expected.keys())
                 if found[(k, n)] != expected[(k, n)]]
    return problems
