"""``facecli gallery copy SRC DST``: a gallery moved between files and databases, verified.

The source is read as one matrix (``Gallery._templates``: one consistent state
even while others write to it; every template checked as it is read), written
to a new or empty destination of the same model in one enroll (one
transaction: all or nothing), then read back from the destination and
compared: number of persons, number of templates and a content checksum.
Names, embeddings, source paths, photo hashes, face boxes, enrollment times,
the gallery's FPIR setting and the projection head it is used with (its
record: sha256 and path, and its bytes when the source keeps them) are
copied; template ids are numbered anew.

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
from facecli.gallery.people import who_has
from facecli.matching import TemplateMatrix
from facecli.values import Template

_CHUNK = 50_000


@dataclass(frozen=True)
class Content:
    """What a gallery holds, as a copy compares it."""

    persons: int
    templates: int
    checksum: str


@dataclass(frozen=True)
class Copied:
    """A finished, verified copy: where from, where to (both as messages show them), and what."""

    source: str
    destination: str
    content: Content


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
    digest = hashlib.sha256(f"facecli-gallery\0{model}\0{dim}\0".encode())
    rows = sorted(range(len(matrix.ids)), key=lambda r: (matrix.names[matrix.person_of_row[r]].encode(),
                                                         info[int(matrix.ids[r])]["sha256"]))
    for r in rows:
        name = matrix.names[matrix.person_of_row[r]]
        digest.update(name.encode() + b"\0" + info[int(matrix.ids[r])]["sha256"].encode() + b"\0")
        digest.update(np.asarray(matrix.matrix[r], dtype="<f4").tobytes())
    return Content(len(matrix.names), len(matrix.ids), digest.hexdigest())


def gallery_content(gallery: Gallery) -> Content:
    """The counts and checksum of an open gallery, as ``copy_gallery`` verifies them."""
    return content(gallery.model, gallery.dim, *read_all(gallery))


def copy_gallery(source: Gallery, destination: str | os.PathLike | DatabaseURL) -> Copied:
    """Copy the open gallery ``source`` into a new or empty gallery at ``destination`` and verify it there.

    Refuses a destination built with another model, and one with people in it.
    """
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
    expected = content(model, dim, matrix, info)
    with open_gallery(as_location(destination), create=True) as dst:
        if dst.model is not None and dst.model != model:
            raise GalleryError(dst.location, f"built with model {dst.model}; the source {source.location} is "
                                             f"{model}: copy into a new gallery or one of the same model")
        dst.bind(model)
        if dst.person_count():
            raise GalleryError(dst.location, f"already holds {dst.person_count()} people: "
                                             "copy only into a new or empty gallery")
        # first: a failed enroll leaves an empty gallery, which a new copy accepts
        dst.set_fpir(source.fpir())
        record = source.head()
        dst.set_head(record and replace(record, data=kept_head(source)))
        entries = []
        for r, tid in enumerate(matrix.ids):
            t = info[int(tid)]
            entries.append((matrix.names[matrix.person_of_row[r]],
                            Template(matrix.matrix[r], t["source"], t["sha256"], tuple(t["box"]), t["created"])))
        dst.enroll(entries)
        got = gallery_content(dst)
        if got != expected:
            raise GalleryError(dst.location, f"copy verification failed: {got.persons} people, {got.templates} "
                                             f"templates, checksum {got.checksum[:16]}; expected "
                                             f"{expected.persons}, {expected.templates}, {expected.checksum[:16]}")
        return Copied(source.location, dst.location, got)
