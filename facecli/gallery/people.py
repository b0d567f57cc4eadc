"""Who holds which face: the one-face-one-person rule, and moving faces between people (merge, split).

A face is a photo (by content hash) and a box in it: two boxes of one photo
overlapping by ``SAME_FACE_IOU`` or more are the same face. One face is one
person's, so the second face of a group photo may be someone else; one
person holds at most one face of a photo (the schema's UNIQUE (person_id,
sha256)). ``merge`` and ``split`` keep both rules, each in one transaction,
written once for every backend over the gallery's own plumbing; both mark a
search index built before them as stale, as a removal does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facecli.decisions import is_too_small
from facecli.errors import FaceTooSmall, GalleryError, InputError
from facecli.names import person_name
from facecli.values import SAME_FACE_IOU, EnrollResult, Stored, Template, iou, stored_source

if TYPE_CHECKING:
    from facecli.gallery.store import Gallery
    from facecli.values import ClusteredFace, HeadRecord

def who_has(faces: list[tuple[str, Sequence[float]]], name: str, box: Sequence[float]) -> Stored | None:
    """What enrolling the face at ``box`` for ``name`` does, given the faces of its photo enrolled so far
    ((person, box) pairs): None (it may be added); ``present`` (that person has this face); ``taken`` (someone
    else has it: ``holder``); or ``duplicate`` (that person has another face of this photo)."""
    same = sorted(n for n, b in faces if iou(b, box) >= SAME_FACE_IOU)
    if name in same:
        return Stored("present")
    if same:
        return Stored("taken", same[0])
    if any(n == name for n, _ in faces):
        return Stored("duplicate", name)
    return None


def refusal(stored: Stored) -> str | None:
    """Why the gallery refused a template (``taken``, ``duplicate``), in words; None when it holds it."""
    if stored.status == "taken":
        return f"this face is already enrolled as {stored.holder}"
    if stored.status == "duplicate":
        return f"{stored.holder} already has another face of this photo"
    return None


def settle(result: EnrollResult, stored: Stored, subject: str) -> EnrollResult:
    """An enroll's result once the gallery stored its template: added or present, else an error naming
    ``subject`` and who holds the face (what enroll, cluster, name and xmp import report)."""
    reason = refusal(stored)
    result.status = stored.status if reason is None else "error"
    result.error = None if reason is None else InputError(subject, reason)
    return result


@dataclass(frozen=True)
class Moved:
    """What a merge or a split did: templates of ``source`` that joined ``target`` (``moved``), or that were
    deleted (``dropped``: the target had a face of their photo already, or, with no target, taken out), and
    whether ``source`` was removed, left with no template."""

    source: str
    target: str | None
    moved: int
    dropped: int
    source_removed: bool


def merge(gallery: Gallery, into: str, other: str) -> Moved:
    """Give all of ``other``'s templates to ``into`` and remove ``other`` (one transaction). Where both have a
    face of one photo, ``into`` keeps its own and ``other``'s is dropped."""
    with gallery._write():
        gallery._db.lock_enrolls()  # an enroll deciding who holds a face sees the gallery before or after
        target, into = _person(gallery, into)
        source, other = _person(gallery, other)
        if source == target:
            raise GalleryError(other, "a person cannot be merged into themselves")
        dropped = _run(gallery, "DELETE FROM {s}templates WHERE person_id = ? AND sha256 IN "
                                "(SELECT sha256 FROM {s}templates WHERE person_id = ?)", (source, target))
        moved = _run(gallery, "UPDATE {s}templates SET person_id = ? WHERE person_id = ?", (target, source))
        _run(gallery, "DELETE FROM {s}persons WHERE id = ?", (source,))
        mark_stale(gallery)
    return Moved(other, into, moved, dropped, True)


def split(gallery: Gallery, name: str, ids: Sequence[int], new: str | None = None) -> Moved:
    """Take the templates ``ids`` out of ``name`` (one transaction): to the person ``new`` (created if need be;
    the naming rules of enroll apply), or, with None, delete them (a wrong face taken out). An id that is not
    one of ``name``'s changes nothing; ``name`` left with no template is removed."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        raise GalleryError(name, "no template to take out")
    new = None if new is None else person_name(new)
    with gallery._write():
        gallery._db.lock_enrolls()  # as merge
        source, name = _person(gallery, name)
        listed = gallery._db.dialect.id_list(wanted)
        owned = {i for (i,) in gallery._rows("SELECT id FROM {s}templates WHERE person_id = ? AND {ids:id}",
                                             (source, listed))}
        for i in wanted:
            if i not in owned:
                raise GalleryError(f"template {i}", f"is not one of {name}'s templates")
        moved = 0
        if new is None:
            dropped = _run(gallery, "DELETE FROM {s}templates WHERE {ids:id}", (listed,))
        else:
            new = gallery.person(new) or new
            if new == name:
                raise GalleryError(new, "these templates are this person's already")
            gallery._refuse_look_alikes([new])
            target = gallery._rows("INSERT INTO {s}persons (name, created) VALUES (?, ?) ON CONFLICT (name) "
                                   "DO UPDATE SET name = excluded.name RETURNING id", (new, time.time()))[0][0]
            dropped = _run(gallery, "DELETE FROM {s}templates WHERE {ids:id} AND sha256 IN "
                                    "(SELECT sha256 FROM {s}templates WHERE person_id = ?)", (listed, target))
            moved = _run(gallery, "UPDATE {s}templates SET person_id = ? WHERE {ids:id}", (target, listed))
        emptied = not gallery._rows("SELECT 1 FROM {s}templates WHERE person_id = ? LIMIT 1", (source,))
        if emptied:
            _run(gallery, "DELETE FROM {s}persons WHERE id = ?", (source,))
        mark_stale(gallery)
    return Moved(name, new, moved, dropped, emptied)


def mark_stale(gallery: Gallery) -> None:
    """Count one more removal, in the caller's write transaction: a search index built before it, which knows
    templates by id and their persons as they were, is rebuilt."""
    _run(gallery, "INSERT INTO {s}meta VALUES ('removals', '1') ON CONFLICT (key) "
                  "DO UPDATE SET value = CAST(CAST({s}meta.value AS BIGINT) + 1 AS TEXT)", ())


def _person(gallery: Gallery, name: str) -> tuple[int, str]:
    """An enrolled person's id and stored name, locked until the transaction ends; else an error naming them."""
    stored = gallery.person(name) or name
    rows = gallery._rows("SELECT id FROM {s}persons WHERE name = ?{lock}", (stored,))
    if not rows:
        raise GalleryError(name, f"no such person in {gallery.location}")
    return int(rows[0][0]), stored


def _run(gallery: Gallery, text: str, params: tuple) -> int:
    """One change, in the caller's write transaction: the number of rows it touched."""
    return int(gallery._db.run(gallery._sql(text), params).rowcount)


def enroll_clusters(gallery: Gallery, clustered: list[ClusteredFace], min_face: float,
                    head: Callable[[], HeadRecord | None]) -> list[EnrollResult]:
    """``Engine.enroll_clusters``: each cluster as a new person ``unknown-N`` (one transaction), per clustered face
    the person its cluster became and whether the face is in the gallery under that name, or why not; ``head``
    gives the head record a first enroll writes (asked only when something is written)."""
    results = []
    for c in clustered:
        d, subject = c.face.detection, f"{c.result.path}#{c.face.index}"
        if is_too_small(d, min_face):
            results.append(EnrollResult(None, c.result.path, "error", FaceTooSmall(subject, d.width, d.height,
                                                                                   min_face)))
        else:
            template = Template(c.face.embedding, stored_source(c.result.path), c.result.sha256, d.box)
            results.append(EnrollResult(None, c.result.path, "pending", template=template))
    named = sorted({c.cluster for c, r in zip(clustered, results) if r.template is not None})
    if not named:
        return results
    record = head()
    names = dict(zip(named, gallery.new_names("unknown-", len(named))))
    for c, r in zip(clustered, results):
        r.name = names.get(c.cluster)
    todo = [(c, r) for c, r in zip(clustered, results) if r.template is not None]
    for (c, r), stored in zip(todo, gallery.enroll([(r.name, r.template) for _, r in todo], record)):
        settle(r, stored, f"{r.path}#{c.face.index}")
    return results
