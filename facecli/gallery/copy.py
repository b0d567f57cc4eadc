"""``facecli gallery copy SRC DST``: a gallery moved between files and databases, or merged into another, verified.

The source is read as one matrix (``Gallery._templates``: one consistent state
even while others write to it; every template checked as it is read), written
to the destination (of the same model) in one enroll (one transaction: all or
nothing), then read back from the destination and compared: number of
persons, number of templates and a content checksum.
Names, embeddings, source paths, photo hashes, face boxes and enrollment times
are copied; template ids are numbered anew. Into a new or empty gallery, the
gallery's FPIR setting and the projection head it is used with (its record:
sha256 and path, and its bytes when the source keeps them) are copied too.

Into a gallery that has people, the copy merges: a person of the same name
gains the source's templates, a face they have already is left as it is
(``present``), and a face the destination holds under another name (one face,
one person) or another face of a photo the person already has a face of is not
copied but reported as a ``Conflict``; the destination keeps its own settings.
Nothing is ever overwritten.

The checksum is backend-independent: SHA-256 over the model and embedding
size, then, persons in code-point order of their names and each person's
templates in order of their photo's SHA-256, the name, the photo's SHA-256
and the embedding as little-endian float32. Ids, times, sources and boxes
are not in it (ids differ between backends; the rest is copied too).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from facecli.errors import GalleryError
from facecli.gallery import DatabaseURL, Gallery, as_location, open_gallery
from facecli.gallery.keptheads import kept_head
from facecli.gallery.people import refusal, who_has
from facecli.matching import TemplateMatrix
from facecli.values import Stored, Template

_CHUNK = 50_000


@dataclass(frozen=True)
class Content:
    """What a gallery holds, as a copy compares it."""

    persons: int
    templates: int
    checksum: str


@dataclass(frozen=True)
class Conflict:
    """A source template the destination refused: ``name``'s face of the photo ``source`` is the destination's
    ``holder``'s (``taken``), or ``holder`` has another face of that photo already (``duplicate``)."""

    name: str
    source: str
    status: str
    holder: str | None

    @property
    def reason(self) -> str:
        return refusal(Stored(self.status, self.holder)) or self.status


@dataclass(frozen=True)
class Copied:
    """A finished, verified copy: where from, where to (both as messages show them), and what the destination
    holds now; how many templates were added, were there already, or conflicted (a merge)."""

    source: str
    destination: str
    content: Content
    added: int = 0
    present: int = 0
    conflicts: tuple[Conflict, ...] = ()
    merged: bool = False  # into a gallery that had people


def read_all(gallery: Gallery) -> tuple[TemplateMatrix, dict[int, dict[str, Any]]]:
    """Every template (as one matrix) and its source, hash, box and time."""
    matrix = gallery._templates()
    ids = [int(i) for i in matrix.ids]
    info: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), _CHUNK):
        info |= gallery._sources_of(ids[start:start + _CHUNK])
    if len(info) != len(ids):  # a person removed between the two reads
        raise GalleryError(gallery.location, "changed while being read; run the copy again")
    return matrix, info


def content(model: str, dim: int, matrix: TemplateMatrix, info: dict[int, dict[str, Any]]) -> Content:
    """Counts and checksum of a gallery's templates (see the module's docstring)."""
    return _content(model, dim, _items(matrix, info))


def _items(matrix: TemplateMatrix, info: dict[int, dict[str, Any]]) -> list[tuple[str, str, np.ndarray]]:
    """(name, photo sha256, embedding) of every template."""
    return [(matrix.names[matrix.person_of_row[r]], info[int(tid)]["sha256"], matrix.matrix[r])
            for r, tid in enumerate(matrix.ids)]


def _content(model: str, dim: int, items: list[tuple[str, str, np.ndarray]]) -> Content:
    digest = hashlib.sha256(f"facecli-gallery\0{model}\0{dim}\0".encode())
    for name, sha, vector in sorted(items, key=lambda t: (t[0].encode(), t[1])):
        digest.update(name.encode() + b"\0" + sha.encode() + b"\0")
        digest.update(np.asarray(vector, dtype="<f4").tobytes())
    return Content(len({name for name, _, _ in items}), len(items), digest.hexdigest())


def gallery_content(gallery: Gallery) -> Content:
    """The counts and checksum of an open gallery, as ``copy_gallery`` verifies them."""
    return content(gallery.model, gallery.dim, *read_all(gallery))


def copy_gallery(source: Gallery, destination: str | os.PathLike | DatabaseURL) -> Copied:
    """Copy the open gallery ``source`` into the gallery at ``destination`` (new, empty, or merged into: see the
    module's docstring) and verify it there. Refuses a destination built with another model."""
    model, dim = str(source.model), source.dim
    matrix, info = read_all(source)
    faces: dict[str, list[tuple[str, list[float]]]] = {}
    for r, tid in enumerate(matrix.ids):  # a gallery from before "one face, one person" may break it
        t, name = info[int(tid)], matrix.names[matrix.person_of_row[r]]
        held = who_has(faces.setdefault(t["sha256"], []), name, t["box"])
        if held is not None and held.status == "taken":
            raise GalleryError(source.location, f"a face of the photo {t['source']} is enrolled as both "
                                                f"{held.holder} and {name}, which a gallery now refuses: "
                                                "remove one of them before copying")
        faces[t["sha256"]].append((name, t["box"]))
    with open_gallery(as_location(destination), create=True) as dst:
        if dst.model is not None and dst.model != model:
            raise GalleryError(dst.location, f"built with model {dst.model}; the source {source.location} is "
                                             f"{model}: copy into a new gallery or one of the same model")
        dst.bind(model)
        merged = bool(dst.person_count())
        before = _items(*read_all(dst)) if merged else []
        if not merged:  # first: a failed enroll leaves an empty gallery, which a new copy accepts
            dst.set_fpir(source.fpir())
            record = source.head()
            dst.set_head(record and replace(record, data=kept_head(source)))
        entries = []
        for r, tid in enumerate(matrix.ids):
            t = info[int(tid)]
            entries.append((matrix.names[matrix.person_of_row[r]],
                            Template(matrix.matrix[r], t["source"], t["sha256"], tuple(t["box"]), t["created"])))
        stored = dst.enroll(entries)
        added = [(dst.person(name) or name, t.sha256, t.embedding)  # as the destination spells the name
                 for (name, t), s in zip(entries, stored) if s.status == "added"]
        conflicts = tuple(Conflict(name, t.source, s.status, s.holder) for (name, t), s in zip(entries, stored)
                          if s.status not in ("added", "present"))
        expected = _content(model, dim, before + added)
        got = gallery_content(dst)
        if got != expected:
            raise GalleryError(dst.location, f"copy verification failed: {got.persons} people, {got.templates} "
                                             f"templates, checksum {got.checksum[:16]}; expected "
                                             f"{expected.persons}, {expected.templates}, {expected.checksum[:16]}")
        present = sum(s.status == "present" for s in stored)
        return Copied(source.location, dst.location, got, len(added), present, conflicts, merged)
