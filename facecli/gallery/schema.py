"""The gallery's schema and its history, for both dialects: each version is one step here, in one place.

A new gallery is created by applying every step in turn; an older one is
upgraded by its first write, in that write's transaction (all steps or
none), and each step from 2 on is recorded in ``schema_history`` (version,
time, facecli version). Reading needs no upgrade: every version in
``READABLE`` answers the queries facecli makes. Where the version is kept is
the backend's (SQLite's ``PRAGMA user_version``; ``meta.schema`` in a
database).

A step holds its SQL for each dialect and, for PostgreSQL, what it adds to
the catalogue as ``postgres.describe`` lists it (the file's expected objects
are read back from an in-memory database built from the steps), so a
gallery holding anything facecli did not make is found (``foreign objects``).

History:

1. ``meta``, ``persons``, ``templates`` (facecli 0.1); a database's
   embeddings are pgvector's ``vector(dim)``.
2. ``schema_history``; an index on ``templates(sha256)``, so a photo already
   enrolled under any name is found without a scan.
3. The photo index (``facecli index``): ``photos`` (one row per content,
   by sha256: its displayed size and the detector settings that found its
   faces), ``files`` (each path holding a photo, with the size and
   modification time that let a re-run skip it), ``faces`` (each face of a
   photo: box, landmarks, detector score, size, the base model's embedding,
   and the unnamed cluster it was put in).
4. ``heads``: the projection head a gallery is used with, kept in the
   gallery (its ONNX bytes, by sha256, at most ``heads.STORED_MAX``), so
   that the commands matching against it need no ``--head``; meta's
   ``head_sha256`` still says which head is in use.

The next change is a new ``Step`` appended to ``STEPS``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from facecli.version import __version__


@dataclass(frozen=True)
class Step:
    """One schema version: its statements per dialect (``{dim}``: the embedding size), and for PostgreSQL the
    catalogue entries it adds ((kind, name) -> definition, as ``postgres.describe`` prints them)."""

    sqlite: str
    postgres: str
    catalogue: dict[tuple[str, str], str] = field(default_factory=dict)


_NN = "not null"
_ID = "bigint not null identity always"
_UNIQUE = "CREATE UNIQUE INDEX {0} ON facecli.{1} USING btree ({2})"

STEPS: list[Step] = [
    Step(  # 1
        sqlite="""
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
CREATE INDEX templates_person ON templates(person_id)
""",
        postgres="""
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
    embedding {vector}({dim}) NOT NULL,
    source text NOT NULL,
    sha256 text NOT NULL,
    box text NOT NULL,
    created double precision NOT NULL,
    UNIQUE (person_id, sha256)
);
CREATE INDEX templates_person ON facecli.templates (person_id)
""",
        catalogue={
            ("table", "meta"): "", ("table", "persons"): "", ("table", "templates"): "",
            ("column", "meta.key"): f"text {_NN}", ("column", "meta.value"): f"text {_NN}",
            ("column", "persons.id"): _ID, ("column", "persons.name"): f"text {_NN}",
            ("column", "persons.created"): f"double precision {_NN}",
            ("column", "templates.id"): _ID, ("column", "templates.person_id"): f"bigint {_NN}",
            ("column", "templates.model"): f"text {_NN}", ("column", "templates.embedding"): f"vector({{dim}}) {_NN}",
            ("column", "templates.source"): f"text {_NN}", ("column", "templates.sha256"): f"text {_NN}",
            ("column", "templates.box"): f"text {_NN}", ("column", "templates.created"): f"double precision {_NN}",
            ("sequence", "persons_id_seq"): "", ("sequence", "templates_id_seq"): "",
            ("constraint", "meta_pkey on meta"): "PRIMARY KEY (key)",
            ("constraint", "persons_pkey on persons"): "PRIMARY KEY (id)",
            ("constraint", "persons_name_key on persons"): "UNIQUE (name)",
            ("constraint", "templates_pkey on templates"): "PRIMARY KEY (id)",
            ("constraint", "templates_person_id_fkey on templates"):
                "FOREIGN KEY (person_id) REFERENCES facecli.persons(id) ON DELETE CASCADE",
            ("constraint", "templates_person_id_sha256_key on templates"): "UNIQUE (person_id, sha256)",
            ("index", "meta_pkey"): _UNIQUE.format("meta_pkey", "meta", "key"),
            ("index", "persons_pkey"): _UNIQUE.format("persons_pkey", "persons", "id"),
            ("index", "persons_name_key"): _UNIQUE.format("persons_name_key", "persons", "name"),
            ("index", "templates_pkey"): _UNIQUE.format("templates_pkey", "templates", "id"),
            ("index", "templates_person_id_sha256_key"):
                _UNIQUE.format("templates_person_id_sha256_key", "templates", "person_id, sha256"),
            ("index", "templates_person"): "CREATE INDEX templates_person ON facecli.templates USING btree (person_id)",
        }),
    Step(  # 2
        sqlite="""
CREATE TABLE schema_history (version INTEGER PRIMARY KEY, applied REAL NOT NULL, facecli TEXT NOT NULL);
CREATE INDEX templates_sha256 ON templates(sha256)
""",
        postgres="""
CREATE TABLE facecli.schema_history (version integer PRIMARY KEY, applied double precision NOT NULL,
                                     facecli text NOT NULL);
CREATE INDEX templates_sha256 ON facecli.templates (sha256)
""",
        catalogue={
            ("table", "schema_history"): "",
            ("column", "schema_history.version"): f"integer {_NN}",
            ("column", "schema_history.applied"): f"double precision {_NN}",
            ("column", "schema_history.facecli"): f"text {_NN}",
            ("constraint", "schema_history_pkey on schema_history"): "PRIMARY KEY (version)",
            ("index", "schema_history_pkey"): _UNIQUE.format("schema_history_pkey", "schema_history", "version"),
            ("index", "templates_sha256"): "CREATE INDEX templates_sha256 ON facecli.templates USING btree (sha256)",
        }),
    Step(  # 3
        sqlite="""
CREATE TABLE photos (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    detector TEXT NOT NULL,
    indexed REAL NOT NULL
);
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    photo_id INTEGER NOT NULL REFERENCES photos(id),
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL
);
CREATE INDEX files_photo ON files(photo_id);
CREATE TABLE faces (
    id INTEGER PRIMARY KEY,
    photo_id INTEGER NOT NULL REFERENCES photos(id),
    n INTEGER NOT NULL,
    embedding BLOB NOT NULL,
    box TEXT NOT NULL,
    landmarks TEXT NOT NULL,
    score REAL NOT NULL,
    size REAL NOT NULL,
    cluster INTEGER,
    UNIQUE (photo_id, n)
);
CREATE INDEX faces_cluster ON faces(cluster)
""",
        postgres="""
CREATE TABLE facecli.photos (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256 text NOT NULL UNIQUE,
    width integer NOT NULL,
    height integer NOT NULL,
    detector text NOT NULL,
    indexed double precision NOT NULL
);
CREATE TABLE facecli.files (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path text NOT NULL UNIQUE,
    photo_id bigint NOT NULL REFERENCES facecli.photos(id),
    size bigint NOT NULL,
    mtime_ns bigint NOT NULL
);
CREATE INDEX files_photo ON facecli.files (photo_id);
CREATE TABLE facecli.faces (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    photo_id bigint NOT NULL REFERENCES facecli.photos(id),
    n integer NOT NULL,
    embedding {vector}({dim}) NOT NULL,
    box text NOT NULL,
    landmarks text NOT NULL,
    score double precision NOT NULL,
    size double precision NOT NULL,
    cluster bigint,
    UNIQUE (photo_id, n)
);
CREATE INDEX faces_cluster ON facecli.faces (cluster)
""",
        catalogue={
            **{("table", t): "" for t in ("photos", "files", "faces")},
            **{("sequence", f"{t}_id_seq"): "" for t in ("photos", "files", "faces")},
            **{("column", f"{t}.id"): _ID for t in ("photos", "files", "faces")},
            **{("constraint", f"{t}_pkey on {t}"): "PRIMARY KEY (id)" for t in ("photos", "files", "faces")},
            **{("index", f"{t}_pkey"): _UNIQUE.format(f"{t}_pkey", t, "id") for t in ("photos", "files", "faces")},
            ("column", "photos.sha256"): f"text {_NN}", ("column", "photos.width"): f"integer {_NN}",
            ("column", "photos.height"): f"integer {_NN}", ("column", "photos.detector"): f"text {_NN}",
            ("column", "photos.indexed"): f"double precision {_NN}",
            ("constraint", "photos_sha256_key on photos"): "UNIQUE (sha256)",
            ("index", "photos_sha256_key"): _UNIQUE.format("photos_sha256_key", "photos", "sha256"),
            ("column", "files.path"): f"text {_NN}", ("column", "files.photo_id"): f"bigint {_NN}",
            ("column", "files.size"): f"bigint {_NN}", ("column", "files.mtime_ns"): f"bigint {_NN}",
            ("constraint", "files_path_key on files"): "UNIQUE (path)",
            ("constraint", "files_photo_id_fkey on files"): "FOREIGN KEY (photo_id) REFERENCES facecli.photos(id)",
            ("index", "files_path_key"): _UNIQUE.format("files_path_key", "files", "path"),
            ("index", "files_photo"): "CREATE INDEX files_photo ON facecli.files USING btree (photo_id)",
            ("column", "faces.photo_id"): f"bigint {_NN}", ("column", "faces.n"): f"integer {_NN}",
            ("column", "faces.embedding"): f"vector({{dim}}) {_NN}", ("column", "faces.box"): f"text {_NN}",
            ("column", "faces.landmarks"): f"text {_NN}", ("column", "faces.score"): f"double precision {_NN}",
            ("column", "faces.size"): f"double precision {_NN}", ("column", "faces.cluster"): "bigint",
            ("constraint", "faces_photo_id_fkey on faces"): "FOREIGN KEY (photo_id) REFERENCES facecli.photos(id)",
            ("constraint", "faces_photo_id_n_key on faces"): "UNIQUE (photo_id, n)",
            ("index", "faces_photo_id_n_key"): _UNIQUE.format("faces_photo_id_n_key", "faces", "photo_id, n"),
            ("index", "faces_cluster"): "CREATE INDEX faces_cluster ON facecli.faces USING btree (cluster)",
        }),
    Step(  # 4
        sqlite="CREATE TABLE heads (sha256 TEXT PRIMARY KEY, data BLOB NOT NULL, stored REAL NOT NULL)",
        postgres="CREATE TABLE facecli.heads (sha256 text PRIMARY KEY, data bytea NOT NULL, "
                 "stored double precision NOT NULL)",
        catalogue={
            ("table", "heads"): "",
            ("column", "heads.sha256"): f"text {_NN}", ("column", "heads.data"): f"bytea {_NN}",
            ("column", "heads.stored"): f"double precision {_NN}",
            ("constraint", "heads_pkey on heads"): "PRIMARY KEY (sha256)",
            ("index", "heads_pkey"): _UNIQUE.format("heads_pkey", "heads", "sha256"),
        }),
]

SCHEMA_VERSION = len(STEPS)
READABLE = range(1, SCHEMA_VERSION + 1)


class Migratable(Protocol):
    """What applying steps needs of a backend: run a statement, and record the version reached."""

    dialect: Any
    vector_type: str  # PostgreSQL: pgvector's vector type, named by its schema

    def run(self, sql: str, params: tuple = ()) -> Any: ...

    def set_version(self, version: int) -> None: ...


def statements(step: Step, dialect: str, dim: int, vector: str = "vector") -> list[str]:
    """A step's statements for ``dialect`` ("sqlite" or "postgres"), for embeddings of ``dim`` values (PostgreSQL:
    pgvector's type ``vector``, named by its schema: ``public.vector``)."""
    script = step.sqlite if dialect == "sqlite" else \
        step.postgres.replace("{dim}", str(int(dim))).replace("{vector}", vector)
    return [s for s in script.split(";") if s.strip()]


def create(db: Migratable, dim: int, version: int = SCHEMA_VERSION) -> None:
    """The schema as of ``version`` (default: the current one) in an empty database, in the caller's transaction."""
    for sql in statements(STEPS[0], db.dialect.name, dim, db.vector_type):
        db.run(sql)
    db.set_version(1)
    upgrade(db, 1, dim, version)


def upgrade(db: Migratable, version: int, dim: int, to: int = SCHEMA_VERSION) -> None:
    """Apply every step after ``version`` up to ``to`` (in the caller's transaction) and record each one."""
    for target in range(version + 1, to + 1):
        for sql in statements(STEPS[target - 1], db.dialect.name, dim, db.vector_type):
            db.run(sql)
        db.run(db.dialect.sql("INSERT INTO {s}schema_history VALUES (?, ?, ?)"), (target, time.time(), __version__))
        db.set_version(target)


def catalogue(version: int, dim: int) -> dict[tuple[str, str], str]:
    """Everything a PostgreSQL gallery's schema holds at ``version`` (its HNSW index aside: ``postgres``)."""
    found: dict[tuple[str, str], str] = {}
    for step in STEPS[:version]:
        found |= {key: text.replace("{dim}", str(int(dim))) for key, text in step.catalogue.items()}
    return found
