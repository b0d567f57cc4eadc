"""The gallery: enrolled people and their face templates, written once for every backend.

A gallery stores people and templates (``Template``: a unit embedding with
its source photo, content hash and face box) for one model, and remembers
that model, its embedding size, its schema version and its settings (the
FPIR identify aims at, the projection head it is used with) in ``meta``.
Every query here is written once (``dialect``) and run by a backend
(``backend.Backend``: an SQLite file, a PostgreSQL database, or memory).

Every change is one transaction: an interrupted or failed enroll leaves no
half person. One face (a photo by content hash, and its box) is one
person's: enrolling it under another name is refused. A gallery that does not exist yet and is opened
with ``create`` is *new*: it reads as empty, its model is bound by the first
engine that uses it (``bind``), and it is created by its first write, so a
command that writes nothing leaves nothing behind.

Matching against a gallery (1:N, 1:1 against a claim) is decided in
``identification``, over the few reads here that it needs.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from facecli.calibration import check_fpir
from facecli.errors import GalleryError, ModelMismatch
from facecli.gallery import schema
from facecli.gallery.keptheads import kept_problems, put_head
from facecli.gallery.people import mark_stale, who_has
from facecli.gallery.rows import (
    box_problem,
    box_text,
    checked_matrix,
    head_problem,
    head_record,
    stored_box,
    template_problem,
)
from facecli.matching import TemplateMatrix
from facecli.models import pipeline_spec
from facecli.names import as_stored, look_alike, name_problem, person_name, skeleton
from facecli.values import HeadRecord, PersonInfo, Stored, Template

if TYPE_CHECKING:
    from facecli.gallery.backend import Backend
    from facecli.gallery.search import CandidateIndex


@dataclass(frozen=True)
class GalleryState:
    """What a derived index must match: the model, and which templates exist."""

    model: str
    dim: int
    count: int  # templates
    max_id: int  # largest template id (ids only grow, except after removals)
    removals: int  # persons removed so far: any removal invalidates an index


@dataclass(frozen=True)
class Creator:
    """How a new gallery is made for a model at its first write (its backend, and the foreign objects found in
    it), and what to release if it never is."""

    make: Callable[[str], tuple[Backend, list[str]]]
    close: Callable[[], None] = lambda: None


def _shown(raw: bytes) -> str:
    """A stored name's bytes as a message shows them (whatever another tool wrote there)."""
    return bytes(raw).decode("utf-8", "backslashreplace")


class Gallery:
    """One open gallery; use it as a context manager (``facecli.open_gallery`` opens one)."""

    def __init__(self, db: Backend, location: str, foreign: list[str] | None = None,
                 create: Creator | None = None) -> None:
        self.location = location  # how messages name it (a path, or a URL without its password)
        self._db = db
        self._foreign = foreign or []  # schema objects facecli did not make (``check`` reports them)
        self._create = create  # a new gallery: makes it (for a model) at its first write
        self._derived: dict[str, Any] = {}  # read once, and again after each write
        self._writing = False  # in a write transaction: a driver error there is "cannot write"

    # -- what it was built with ---------------------------------------------------
    def meta(self) -> dict[str, str]:
        """model, dim, created, and settings such as fpir (a new gallery: what it will be created with)."""
        if "meta" not in self._derived:
            with self._db.errors():
                self._derived["meta"] = dict(self._db.run(self._sql("SELECT key, value FROM {s}meta")).fetchall())
        return self._derived["meta"]

    @property
    def model(self) -> str | None:
        """The model its templates come from; None only for a new gallery no engine has used yet."""
        return self.meta().get("model")

    @property
    def dim(self) -> int:
        return int(self.meta().get("dim", 0))

    @property
    def is_new(self) -> bool:
        """Not created yet: its first write creates it."""
        return self._create is not None

    @property
    def schema(self) -> int:
        with self._db.errors():
            return self._db.schema_version()

    def fpir(self) -> float | None:
        """The share of strangers `identify` may name by default, when the gallery sets one."""
        value = self.meta().get("fpir")
        return None if value is None else float(value)

    def head(self) -> HeadRecord | None:
        """The projection head this gallery is used with (its sha256 and path), or None."""
        return head_record(self.meta(), self.location)

    def bind(self, model: str) -> None:
        """Use the gallery with ``model``'s embeddings: a new gallery takes it; any other must have been built
        with it (else ``ModelMismatch``)."""
        dim = pipeline_spec(model).dim
        meta = self.meta()
        if "model" not in meta and self.is_new:
            self._set_meta({"model": model, "dim": str(dim), "created": str(time.time())})
        elif meta.get("model") != model or meta.get("dim") != str(dim):
            raise ModelMismatch(self.location, meta.get("model"), meta.get("dim"), model, dim)

    # -- reading ------------------------------------------------------------------
    def persons(self) -> list[PersonInfo]:
        rows = self._rows("SELECT p.name, COUNT(t.id), p.created FROM {s}persons p "
                          "LEFT JOIN {s}templates t ON t.person_id = p.id GROUP BY p.id ORDER BY p.name{c}")
        return [PersonInfo(name, int(n), created) for name, n, created in rows]

    def person_count(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM {s}persons")[0][0])

    def person(self, name: str) -> str | None:
        """How ``name`` is spelt in the gallery: as typed, else in NFC (how facecli stores names), else in NFD (how
        an older facecli may have stored a name typed on macOS); None when nobody has that name."""
        spellings = [name, as_stored(name), unicodedata.normalize("NFD", name)]
        found = {n for (n,) in self._rows("SELECT name FROM {s}persons WHERE name IN (?, ?, ?)", tuple(spellings))}
        return next((s for s in spellings if s in found), None)

    def has_person(self, name: str) -> bool:
        return self.person(name) is not None

    def templates_of(self, name: str) -> list[dict[str, Any]]:
        """One person's templates: id, source, sha256, box, created (no embeddings)."""
        rows = self._rows("SELECT t.id, t.source, t.sha256, t.box, t.created FROM {s}templates t "
                          "JOIN {s}persons p ON p.id = t.person_id WHERE p.name = ? ORDER BY t.id",
                          (self.person(name) or name,))
        return [{"id": i, "source": s, "sha256": h, "box": stored_box(b, i, self.location), "created": c}
                for i, s, h, b, c in rows]

    def embeddings_of(self, name: str) -> np.ndarray:
        """(T, dim) float32: one person's templates."""
        rows = self._rows("SELECT t.id, t.embedding FROM {s}templates t JOIN {s}persons p ON p.id = t.person_id "
                          "WHERE p.name = ? ORDER BY t.id", (self.person(name) or name,), vectors=True)
        return self._stack([r[1] for r in rows], [r[0] for r in rows])

    def new_names(self, prefix: str, count: int) -> list[str]:
        """``count`` unused names ``prefix1``, ``prefix2``… after the highest one already enrolled."""
        taken = [name[len(prefix):] for (name,) in self._rows("SELECT name FROM {s}persons WHERE name {like} ? || '%'",
                                                               (prefix,))]
        start = max([int(t) for t in taken if t.isascii() and t.isdigit()], default=0)
        return [f"{prefix}{start + k}" for k in range(1, count + 1)]

    def stats(self) -> dict[str, Any]:
        with self._db.errors(), self._db.snapshot():
            meta = self.meta()
            templates = int(self._rows("SELECT COUNT(*) FROM {s}templates")[0][0])
            persons = self.person_count()
            version = self._db.schema_version()
            size = self._db.size()
        return {"gallery": self.location, "model": meta.get("model"), "dim": self.dim, "schema": version,
                "persons": persons, "templates": templates, "bytes": size}

    def check(self) -> list[str]:
        """Everything wrong with the stored data: the database's own integrity, schema objects facecli did not
        make, templates that do not fit the model or cannot be matched against, malformed rows, persons
        without templates; [] when sound."""
        unreadable = any(p.startswith(("table", "column")) and p.endswith(("is missing", "has been changed"))
                         for p in self._foreign)
        with self._db.errors(), self._db.snapshot():
            problems = self._db.integrity(rows=not unreadable) + self._foreign
            if unreadable:
                return problems  # the rows cannot be read as facecli wrote them
            meta, dim = self.meta(), self.dim
            if (problem := head_problem(meta)) is not None:
                problems.append(problem)
            problems += kept_problems(self, meta)
            for model, n in self._rows("SELECT model, COUNT(*) FROM {s}templates GROUP BY model ORDER BY model{c}"):
                if model != meta.get("model"):
                    problems.append(f"{n} templates from model {model}, the gallery is for {meta.get('model')}")
            for tid, name, raw, box in self._rows("SELECT t.id, {bytes:p.name}, t.embedding, t.box FROM {s}templates t "
                                                  "JOIN {s}persons p ON p.id = t.person_id ORDER BY t.id",
                                                  vectors=True):
                for problem in (template_problem(self._db.dialect.decode(raw), dim), box_problem(box)):
                    if problem is not None:
                        problems.append(f"template {tid} of {_shown(name)}: {problem}")
            problems += self._name_problems()
            empty = self._rows("SELECT {bytes:name} FROM {s}persons p WHERE NOT EXISTS "
                               "(SELECT 1 FROM {s}templates t WHERE t.person_id = p.id) ORDER BY name{c}")
        return problems + [f"person {_shown(name)} has no template" for (name,) in empty]

    # -- writing ------------------------------------------------------------------
    def enroll(self, entries: Iterable[tuple[str, Template]], head: HeadRecord | None = None) -> list[Stored]:
        """Add (name, template) pairs in one transaction; new names become persons; per entry, what happened.

        A face (a photo by content hash, and a box overlapping the stored
        one: ``people.who_has``) already enrolled for that person is skipped,
        not duplicated; one enrolled under another name is refused
        (``taken``): one face, one person; so is another face of a photo the
        person has a face of (``duplicate``). Enrolls are serialised, so two
        of them cannot give one face to two people. ``head``: recorded as the
        head the gallery is used with, in the same transaction (a new
        gallery's first enroll through a tuned engine).
        """
        entries = [(person_name(name), t) for name, t in entries]
        if not entries:
            return []
        # an enrolled person keeps the spelling they were stored with (an older facecli's NFD, say)
        spelt = {name: self.person(name) or name for name in {name for name, _ in entries}}
        entries = [(spelt[name], t) for name, t in entries]
        if self.is_new:  # refused before the gallery is created: a refused first enroll leaves nothing behind
            self._refuse_look_alikes(sorted({name for name, _ in entries}))
        now = time.time()
        stored: list[Stored | None] = []
        with self._write():
            self._db.lock_enrolls()
            if head is not None:
                put_head(self, head)
            faces: dict[str, list[tuple[str, list[float]]]] = {}  # photo -> its enrolled faces: (person, box)
            shas = self._db.dialect.id_list(sorted({t.sha256 for _, t in entries}))
            for i, sha, name, box in self._rows("SELECT t.id, t.sha256, p.name, t.box FROM {s}templates t JOIN "
                                                "{s}persons p ON p.id = t.person_id WHERE {ids:t.sha256}", (shas,)):
                faces.setdefault(sha, []).append((name, stored_box(box, i, self.location)))
            todo: list[tuple[int, str, Template]] = []
            first: dict[str, float] = {}  # a new person's creation: their earliest template's
            for name, t in entries:
                held = who_has(faces.setdefault(t.sha256, []), name, t.box)
                if held is not None:
                    stored.append(held)
                    continue
                faces[t.sha256].append((name, list(t.box)))
                todo.append((len(stored), name, t))
                stored.append(None)
                first[name] = min(first.get(name, np.inf), now if t.created is None else t.created)
            if todo:
                self._refuse_look_alikes(sorted({name for _, name, _ in todo}))
                # new persons are inserted, existing ones locked (DO UPDATE), in name order: a concurrent remove
                # of one of them waits for this enroll
                names = sorted(first)
                ids = self._db.run_each(self._sql(
                    "INSERT INTO {s}persons (name, created) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id"),
                    [(n, first[n]) for n in names])
                person = {n: row[0] for n, row in zip(names, ids)}
                dialect, model = self._db.dialect, self.model
                # NOT EXISTS first: a photo already there draws no id, so ids are 1, 2, 3 … in both backends
                added = self._db.run_each(self._sql(
                    "INSERT INTO {s}templates (person_id, model, embedding, source, sha256, box, created) "
                    "SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS "
                    "(SELECT 1 FROM {s}templates WHERE person_id = ? AND sha256 = ?) "
                    "ON CONFLICT (person_id, sha256) DO NOTHING RETURNING id"),
                    [(person[name], model, dialect.encode(t.embedding), t.source, t.sha256, box_text(t.box),
                      now if t.created is None else t.created, person[name], t.sha256) for _, name, t in todo])
                for (i, _, _), row in zip(todo, added):
                    stored[i] = Stored("added" if row is not None else "present")
        return stored  # type: ignore[return-value]

    def remove(self, name: str) -> int:
        """Delete a person and their templates (one transaction); the number of templates removed."""
        with self._write():
            row = self._rows("SELECT id FROM {s}persons WHERE name = ?{lock}", (self.person(name) or name,))
            if not row:
                raise GalleryError(name, f"no such person in {self.location}")
            n = self._db.run(self._sql("DELETE FROM {s}templates WHERE person_id = ?"), row[0]).rowcount
            self._db.run(self._sql("DELETE FROM {s}persons WHERE id = ?"), row[0])
            mark_stale(self)  # a search index built before this removal is stale
        return int(n)

    def rename(self, old: str, new: str) -> None:
        """Give an enrolled person another name (one no one else has)."""
        old, new = self.person(old) or old, person_name(new)
        taken = GalleryError(new, "a person with this name is already enrolled")
        try:
            with self._write():
                self._db.lock_enrolls()  # a concurrent enroll or rename cannot slip a look-alike in
                if not self._rows("SELECT 1 FROM {s}persons WHERE name = ?", (old,)):
                    raise GalleryError(old, f"no such person in {self.location}")  # whatever the new name
                if new != old and self._rows("SELECT 1 FROM {s}persons WHERE name = ?", (new,)):
                    raise taken
                self._refuse_look_alikes([new], ignore=old)
                self._db.run(self._sql("UPDATE {s}persons SET name = ? WHERE name = ?"), (new, old))
        except GalleryError as exc:
            if type(exc.__context__).__name__ in ("UniqueViolation", "IntegrityError"):  # enrolled meanwhile
                raise taken from None
            raise

    def set_fpir(self, fpir: float | None) -> None:
        """Store (or with None, forget) the share of strangers identify may name by default."""
        self._set_meta({"fpir": None if fpir is None else repr(check_fpir(fpir))})

    def set_head(self, head: HeadRecord | None) -> None:
        """Use the gallery with this head (None: none), keeping its bytes when the record carries them
        (``keptheads``); the templates stay as they are."""
        with self._write():
            put_head(self, head)

    def close(self) -> None:
        self._db.close()
        if self._create is not None:
            self._create.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Gallery {self.location} model={self.model}{' new' if self.is_new else ''}>"

    # -- what matching and search read (``identification``, ``search``) ---------------
    def _state(self) -> GalleryState:
        with self._db.errors(), self._db.snapshot():
            count, max_id = self._rows("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM {s}templates")[0]
            removals = self._rows("SELECT value FROM {s}meta WHERE key = 'removals'")
        return GalleryState(str(self.model), self.dim, int(count), int(max_id),
                            int(removals[0][0]) if removals else 0)

    def _templates(self) -> TemplateMatrix:
        """Every template in one matrix, rows grouped by person: read once (one statement: one state), then
        reused until the next write."""
        if "matrix" not in self._derived:
            self._derived["matrix"] = self._matrix_of(self._rows(
                "SELECT p.name, t.embedding, t.id FROM {s}templates t JOIN {s}persons p ON p.id = t.person_id "
                "ORDER BY p.name{c}, t.id", vectors=True))
        return self._derived["matrix"]

    def _templates_by_id(self, ids: np.ndarray, whole_persons: bool = False) -> TemplateMatrix:
        """The templates with these ids (or, ``whole_persons``, all templates of their persons), rows grouped by
        person; one statement, so whole persons are whole."""
        chosen = "{ids:t.id}" if not whole_persons else \
            "t.person_id IN (SELECT person_id FROM {s}templates WHERE {ids:id})"
        return self._matrix_of(self._rows(
            "SELECT p.name, t.embedding, t.id FROM {s}templates t JOIN {s}persons p ON p.id = t.person_id "
            f"WHERE {chosen} ORDER BY p.name{{c}}, t.id", (self._db.dialect.id_list([int(i) for i in ids]),),
            vectors=True))

    def _sources_of(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Template id -> its source photo, content hash, face box and when it was enrolled."""
        rows = self._rows("SELECT id, source, sha256, box, created FROM {s}templates WHERE {ids:id}",
                          (self._db.dialect.id_list([int(i) for i in ids]),))
        return {i: {"source": s, "sha256": h, "box": stored_box(b, i, self.location), "created": c}
                for i, s, h, b, c in rows}

    def _count_up_to(self, max_id: int) -> int:
        """Templates with an id up to ``max_id``: equal to an index's count when none of its rows went."""
        return int(self._rows("SELECT COUNT(*) FROM {s}templates WHERE id <= ?", (int(max_id),))[0][0])

    def _iter_embeddings(self, after_id: int = 0, chunk: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(template ids, float32 embeddings) in id order, ``chunk`` rows at a time, from ``after_id`` on."""
        while True:
            rows = self._rows("SELECT id, embedding FROM {s}templates WHERE id > ? ORDER BY id LIMIT ?",
                              (int(after_id), int(chunk)), vectors=True)
            if not rows:
                return
            ids = [r[0] for r in rows]
            yield np.array(ids, dtype=np.int64), self._stack([r[1] for r in rows], ids)
            after_id = rows[-1][0]

    def _search_index(self, log: Callable[[str], None]) -> CandidateIndex:
        return self._db.search_index(self, log)

    def _cached(self, key: str, make: Callable[[], Any]) -> Any:
        """What is derived from the content (searchers, templates through a head), kept until the next write."""
        if key not in self._derived:
            self._derived[key] = make()
        return self._derived[key]

    # -- plumbing -------------------------------------------------------------------
    def _sql(self, text: str) -> str:
        return self._db.dialect.sql(text.replace("{lock}", " FOR UPDATE" if self._db.dialect.name == "postgres"
                                                  else ""))

    def _rows(self, text: str, params: tuple = (), vectors: bool = False) -> list[tuple]:
        if self._writing:  # the transaction says "cannot write: …"
            return self._db.run(self._sql(text), params, vectors).fetchall()
        with self._db.errors():
            return self._db.run(self._sql(text), params, vectors).fetchall()

    def _stack(self, raws: list[Any], ids: list[int]) -> np.ndarray:
        return checked_matrix(self._db.dialect.decode_all(raws, self.dim), ids, self.dim, self.location)

    def _matrix_of(self, rows: list[tuple[str, Any, int]]) -> TemplateMatrix:
        """(name, stored embedding, template id) rows, grouped by person, as a TemplateMatrix."""
        names: list[str] = []
        index: list[int] = []
        for name, _, _ in rows:
            if not names or names[-1] != name:
                names.append(name)
            index.append(len(names) - 1)
        ids = [r[2] for r in rows]
        return TemplateMatrix(names, np.asarray(index, dtype=np.int64), self._stack([r[1] for r in rows], ids),
                              np.array(ids, dtype=np.int64))

    def _name_problems(self) -> list[str]:
        """Names that another tool wrote and facecli would refuse: not UTF-8, holding invisible characters (NUL
        included), not in NFC, or looking like another person's."""
        problems, sound = [], []
        for (raw,) in self._rows("SELECT {bytes:name} FROM {s}persons ORDER BY name{c}"):
            try:
                name = bytes(raw).decode("utf-8")
            except UnicodeDecodeError:
                problems.append(f"person name {bytes(raw)[:40]!r} is not UTF-8")
                continue
            problem = name_problem(name) or (None if name == as_stored(name) else "a name must be stored in NFC")
            if problem is not None:
                problems.append(f"person {ascii(name)}: {problem}")
            else:
                sound.append(name)
        seen: dict[str, str] = {}
        for name in sound:
            other = seen.setdefault(skeleton(name), name)
            if other != name:
                problems.append(f"persons {ascii(other)} and {ascii(name)} look alike: rename one of them")
        return problems

    def _refuse_look_alikes(self, names: list[str], ignore: str | None = None) -> None:
        """Refuse a new name that looks like an enrolled person's (or like another new one) without being it."""
        existing = [n for (n,) in self._rows("SELECT name FROM {s}persons") if n != ignore]
        new = [n for n in names if n not in existing]
        for i, name in enumerate(new):
            other = look_alike(name, existing + new[:i])
            if other is not None:
                raise GalleryError(ascii(name), f"looks like {ascii(other)}, a different name: choose one that "
                                                "cannot be mistaken for it")

    def _set_meta(self, values: dict[str, str | None]) -> None:
        """Set (None: delete) meta keys in one transaction; a new gallery's model is only remembered until its
        first real write creates it with that model."""
        if self.is_new and set(values) <= {"model", "dim", "created"}:
            self._derived["meta"] = {**self.meta(), **values}  # type: ignore[dict-item]
            return
        with self._write():
            self._put_meta(values)

    def _put_meta(self, values: dict[str, str | None]) -> None:
        """Set (None: delete) meta keys, in the caller's write transaction."""
        for key, value in values.items():
            if value is None:
                self._db.run(self._sql("DELETE FROM {s}meta WHERE key = ?"), (key,))
            else:
                self._db.run(self._sql("INSERT INTO {s}meta VALUES (?, ?) ON CONFLICT (key) "
                                       "DO UPDATE SET value = excluded.value"), (key, value))

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction: creates a new gallery first, and brings an older schema up to date in the same
        transaction (both happen, or neither)."""
        if self._create is not None:
            model = self.model
            if model is None:
                raise GalleryError(self.location, "a new gallery needs a model")
            pending = self._db
            self._db, self._foreign = self._create.make(model)
            self._create = None
            if pending is not self._db:
                pending.close()
            self._derived.clear()
            self.bind(model)  # another process may have created it first, for another model
        with self._db.transaction():
            self._writing = True
            try:
                version = self._db.schema_version(writing=True)
                if version < schema.SCHEMA_VERSION:
                    schema.upgrade(self._db, version, self.dim)
                yield
            finally:
                self._writing = False
        self._derived.clear()
