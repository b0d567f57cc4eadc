"""Names of faces to and from the photo apps people already use, as XMP face regions (``facecli.xmp``).

``export_tags`` writes, for each indexed photo, the faces ``identify`` names
(the same decision as ``find``, from the photo index: no photo is decoded)
into its XMP sidecar. ``import_tags`` goes the other way: each named face
region a photo app wrote (digiKam, Lightroom, Picasa-style MWG regions, or
Windows' MP regions) becomes an enrollment of the face facecli detects at
that place, so a library tagged by hand bootstraps a gallery in one
command. A region whose place holds no detected face (IoU under
``SAME_FACE_IOU``) is reported, never enrolled.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facecli import decisions, xmp
from facecli.errors import FaceCliError, InputError
from facecli.gallery import identification
from facecli.gallery.facematrix import face_matrix
from facecli.gallery.people import refusal
from facecli.gallery.photos import PhotoIndex
from facecli.values import SAME_FACE_IOU, Template, iou

if TYPE_CHECKING:
    from facecli.engine import Engine
    from facecli.gallery.store import Gallery
    from facecli.heads import LoadedHead
    from facecli.values import Threshold


@dataclass
class Tagged:
    """One photo's export or import: the names written or enrolled, or the error that stopped it."""

    path: str
    names: list[str] = field(default_factory=list)
    report: xmp.WriteReport | None = None
    missed: list[str] = field(default_factory=list)  # import: regions not enrolled, and why
    error: FaceCliError | None = None


def export_tags(gallery: Gallery, paths: Iterable[str | FaceCliError], head: LoadedHead | None = None,
                threshold: Threshold | None = None, min_face: float = decisions.MIN_FACE) -> Iterator[Tagged]:
    """Write the named faces of each indexed photo into its XMP sidecar; a photo not in the index is an error
    (``facecli index`` it first)."""
    threshold = threshold or identification.threshold(gallery, head=head)
    index = PhotoIndex(gallery)
    fm = face_matrix(gallery)
    vectors = fm.matrix if head is None else head.apply(fm.matrix)
    for item in paths:
        if isinstance(item, FaceCliError):
            yield Tagged(item.subject, error=item)
            continue
        path = os.path.abspath(item)
        photo = index.photos_of_paths([path]).get(path)
        if photo is None:
            yield Tagged(item, error=InputError(item, "not in the photo index: run `facecli index` on it first"))
            continue
        photo_id, _, width, height, size, mtime_ns = photo
        try:
            st = os.stat(path)
        except OSError as exc:
            yield Tagged(item, error=InputError(item, exc.strerror or str(exc)))
            continue
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):  # its boxes may no longer be where the faces are
            yield Tagged(item, error=InputError(item, "changed since it was indexed: run `facecli index` on it "
                                                      "first"))
            continue
        rows = np.flatnonzero(fm.photos == photo_id)
        info = index.faces(fm.ids[rows].tolist())
        found = identification.decide(gallery, np.asarray(vectors[rows]), threshold, head) if len(rows) else []
        regions = [xmp.Region(d.name, tuple(info[int(fm.ids[r])]["box"])) for r, d in zip(rows, found)
                   if d.name is not None and not decisions.is_too_small_size(float(fm.sizes[r]), min_face)]
        try:
            report = xmp.write_regions(Path(path), (width, height), regions)
        except FaceCliError as exc:
            yield Tagged(path, error=exc)
            continue
        yield Tagged(path, [r.name for r in regions], report)


def import_tags(engine: Engine, gallery: Gallery, paths: Iterable[str | FaceCliError]) -> Iterator[Tagged]:
    """Enroll the face at each named face region of each photo (in its sidecar, else in the photo), in one
    transaction per photo; photos without named regions are not decoded."""
    tagged: dict[str, tuple[tuple[int, int] | None, list[xmp.Region]]] = {}
    todo: list[str] = []
    for item in paths:
        if isinstance(item, FaceCliError):
            yield Tagged(item.subject, error=item)
            continue
        try:
            size, regions = xmp.read_regions(Path(item))
        except FaceCliError as exc:
            yield Tagged(item, error=exc)
            continue
        if regions:
            tagged[item] = (size, regions)
            todo.append(item)
        else:
            yield Tagged(item)
    record = engine._head_to_record(gallery) if todo else None
    for result in engine.run(todo):
        size, regions = tagged[result.path]
        if result.error is not None:
            yield Tagged(result.path, error=result.error)
            continue
        scale = (result.size[0] / size[0], result.size[1] / size[1]) if size and result.size else (1.0, 1.0)
        entries, missed = [], []
        for region in regions:
            box = (region.box[0] * scale[0], region.box[1] * scale[1], region.box[2] * scale[0],
                   region.box[3] * scale[1])
            face = max(result.faces, key=lambda f: iou(f.box, box), default=None)
            if face is None or iou(face.box, box) < SAME_FACE_IOU:
                missed.append(f"{region.name}: no face detected at this region")
                continue
            entries.append((region.name, Template(face.embedding, result.path, str(result.sha256), face.box)))
        stored = gallery.enroll(entries, record) if entries else []
        record = None  # recorded with the first enroll
        names = [n for (n, _), s in zip(entries, stored) if refusal(s) is None]
        refused = [f"{n}: {refusal(s)}" for (n, _), s in zip(entries, stored) if refusal(s) is not None]
        yield Tagged(result.path, names, missed=missed + refused)
