"""The photo index inside a gallery (``facecli index``): which files hold which photos, and each photo's faces.

A photo is its content (sha256): copies and moved files share one photo and
its faces, so a renamed file is never embedded again. A file is a path with
the size and modification time it had when read, so a re-run skips it after
one ``stat``. Faces keep the base model's embedding (as templates do), their
box, landmarks, detector score and size, and the unnamed cluster they were
put in (``library.cluster_unnamed``). Written once for both backends, over
the gallery's own transactions (``store.Gallery``): each batch of photos is
one transaction, so a run killed at any moment leaves whole photos or none,
and the next run does what is missing. Faces that go (a changed or pruned
file) are counted in meta, so a cached copy of the faces knows it is stale
(``facematrix``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from facecli.gallery.rows import box_text, stored_box

if TYPE_CHECKING:
    from facecli.gallery.store import Gallery


@dataclass(frozen=True)
class KnownFile:
    """A file as the index last saw it."""

    path: str
    size: int
    mtime_ns: int
    photo_id: int
    sha256: str
    detector: str


@dataclass(frozen=True)
class IndexedFace:
    """One face of an indexed photo, as recorded."""

    box: tuple[float, float, float, float]
    landmarks: list[list[float]] | None
    score: float
    embedding: np.ndarray


@dataclass(frozen=True)
class FileRecord:
    """What one file brings to the index: its identity and, when its content is new (or was found by other
    detector settings), the photo's size and faces; ``moved_from``: the path it had before, now gone."""

    path: str
    size: int
    mtime_ns: int
    sha256: str
    photo: tuple[int, int, str] | None = None  # (width, height, detector) of a photo (re)analysed
    faces: list[IndexedFace] = field(default_factory=list)
    moved_from: str | None = None


@dataclass(frozen=True)
class FaceState:
    """What a cached copy of the indexed faces must match (as ``store.GalleryState`` for templates)."""

    model: str
    dim: int
    count: int
    max_id: int
    removals: int
    created: str | None = None  # the gallery's creation time: a cache of another gallery at the same path is not it


def face_size(box: tuple[float, float, float, float]) -> float:
    """A face's size: the shorter side of its box (what ``decisions.is_too_small`` compares with min_face)."""
    return float(min(box[2] - box[0], box[3] - box[1]))


class PhotoIndex:
    """The index tables of one open gallery."""

    def __init__(self, gallery: Gallery) -> None:
        self.g = gallery

    def _exists(self) -> bool:
        """Whether the gallery has the index's tables: not a new gallery, nor one of an older schema (until its
        first write upgrades it), which read as an empty index."""
        return not self.g.is_new and self.g.schema >= 3

    # -- reading -------------------------------------------------------------------
    def known_files(self) -> dict[str, KnownFile]:
        """Every indexed path, with what the index knows of it (a new gallery: none)."""
        if not self._exists():
            return {}
        rows = self.g._rows("SELECT f.path, f.size, f.mtime_ns, f.photo_id, p.sha256, p.detector FROM {s}files f "
                            "JOIN {s}photos p ON p.id = f.photo_id")
        return {r[0]: KnownFile(r[0], int(r[1]), int(r[2]), int(r[3]), r[4], r[5]) for r in rows}

    def state(self) -> FaceState:
        if not self._exists():
            return FaceState(str(self.g.model), self.g.dim, 0, 0, 0, self.g.meta().get("created"))
        with self.g._db.errors(), self.g._db.snapshot():
            count, max_id = self.g._rows("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM {s}faces")[0]
            removals = self.g._rows("SELECT value FROM {s}meta WHERE key = 'face_removals'")
        return FaceState(str(self.g.model), self.g.dim, int(count), int(max_id), int(removals[0][0]) if removals else 0,
                         self.g.meta().get("created"))

    def count_up_to(self, max_id: int) -> int:
        return int(self.g._rows("SELECT COUNT(*) FROM {s}faces WHERE id <= ?", (int(max_id),))[0][0])

    def iter_faces(self, after_id: int = 0, chunk: int = 20_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(rows of [face id, photo id, size], float32 embeddings) in id order, from ``after_id`` on."""
        while True:
            rows = self.g._rows("SELECT id, photo_id, size, embedding FROM {s}faces WHERE id > ? ORDER BY id LIMIT ?",
                                (int(after_id), int(chunk)), vectors=True)
            if not rows:
                return
            ids = [r[0] for r in rows]
            yield np.array([r[:3] for r in rows], dtype=np.float64), self.g._stack([r[3] for r in rows], ids)
            after_id = rows[-1][0]

    def faces(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Face id -> its photo (id, sha256, width, height), number in the photo, box, score, size, cluster."""
        rows = self.g._rows("SELECT f.id, f.photo_id, p.sha256, p.width, p.height, f.n, f.box, f.score, f.size, "
                            "f.cluster FROM {s}faces f JOIN {s}photos p ON p.id = f.photo_id WHERE {ids:f.id}",
                            (self.g._db.dialect.id_list([int(i) for i in ids]),))
        return {r[0]: {"photo_id": r[1], "sha256": r[2], "width": r[3], "height": r[4], "face": r[5],
                       "box": stored_box(r[6], r[0], self.g.location), "score": r[7], "size": r[8],
                       "cluster": r[9]} for r in rows}

    def paths(self, photo_ids: Iterable[int]) -> dict[int, list[str]]:
        """Photo id -> the indexed paths holding it, in path order."""
        found: dict[int, list[str]] = {}
        for photo, path in self.g._rows("SELECT photo_id, path FROM {s}files WHERE {ids:photo_id} ORDER BY path{c}",
                                        (self.g._db.dialect.id_list([int(i) for i in photo_ids]),)):
            found.setdefault(photo, []).append(path)
        return found

    def photos_of_paths(self, paths: list[str]) -> dict[str, tuple[int, str, int, int, int, int]]:
        """Indexed path -> (photo id, sha256, width, height, and the file's size and mtime_ns when indexed)."""
        rows = self.g._rows("SELECT f.path, p.id, p.sha256, p.width, p.height, f.size, f.mtime_ns FROM {s}files f "
                            "JOIN {s}photos p ON p.id = f.photo_id WHERE {ids:f.path}",
                            (self.g._db.dialect.id_list(paths),))
        return {r[0]: tuple(r[1:]) for r in rows}

    def faces_of_photos(self, photo_ids: Iterable[int]) -> dict[int, list[int]]:
        """Photo id -> its face ids, in face order."""
        found: dict[int, list[int]] = {}
        for photo, face in self.g._rows("SELECT photo_id, id FROM {s}faces WHERE {ids:photo_id} ORDER BY photo_id, n",
                                        (self.g._db.dialect.id_list([int(i) for i in photo_ids]),)):
            found.setdefault(photo, []).append(face)
        return found

    def clusters(self) -> dict[int, int]:
        """Face id -> the unnamed cluster it was put in (faces not clustered yet are absent)."""
        if not self._exists():
            return {}
        return {int(f): int(c) for f, c in self.g._rows("SELECT id, cluster FROM {s}faces WHERE cluster IS NOT NULL")}

    def counts(self) -> dict[str, int]:
        """Indexed files, photos and faces."""
        if not self._exists():
            return {"files": 0, "photos": 0, "faces": 0}
        with self.g._db.errors(), self.g._db.snapshot():
            return {t: int(self.g._rows(f"SELECT COUNT(*) FROM {{s}}{t}")[0][0]) for t in ("files", "photos", "faces")}

    # -- writing -------------------------------------------------------------------
    def record(self, records: list[FileRecord]) -> None:
        """Record a batch of files in one transaction: new photos with their faces, re-analysed photos' faces
        replaced, files pointed at their photo (a moved file keeps its row), and photos no file holds any more
        forgotten with their faces."""
        if not records:
            return
        g = self.g
        now = time.time()
        with g._write():
            g._db.lock_enrolls()  # two indexers never record one photo twice
            dialect = g._db.dialect
            removed = 0
            shas = dialect.id_list(sorted({r.sha256 for r in records}))
            # a photo recorded already with the same settings (a copy analysed in this run, or by another
            # indexer meanwhile) keeps its faces, their ids and their clusters
            found = {sha: (pid, det) for sha, pid, det in g._rows(
                "SELECT sha256, id, detector FROM {s}photos WHERE {ids:sha256}", (shas,))}
            photo_ids = {sha: pid for sha, (pid, det) in found.items()}
            for r in records:
                if r.photo is None or found.get(r.sha256, (None, None))[1] == r.photo[2]:
                    continue
                found[r.sha256] = (None, r.photo[2])
                width, height, detector = r.photo
                (pid,) = g._db.run(g._sql(
                    "INSERT INTO {s}photos (sha256, width, height, detector, indexed) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (sha256) DO UPDATE SET width = excluded.width, height = excluded.height, "
                    "detector = excluded.detector, indexed = excluded.indexed RETURNING id"),
                    (r.sha256, int(width), int(height), detector, now)).fetchone()
                photo_ids[r.sha256] = pid
                removed += g._db.run(g._sql("DELETE FROM {s}faces WHERE photo_id = ?"), (pid,)).rowcount
                if r.faces:
                    g._db.run_each(g._sql(
                        "INSERT INTO {s}faces (photo_id, n, embedding, box, landmarks, score, size) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"),
                        [(pid, n, dialect.encode(f.embedding), box_text(f.box), json.dumps(f.landmarks),
                          float(f.score), face_size(f.box)) for n, f in enumerate(r.faces)])
            paths = [r.moved_from or r.path for r in records] + [r.path for r in records]
            before = {p: pid for p, pid in g._rows("SELECT path, photo_id FROM {s}files WHERE {ids:path}",
                                                    (dialect.id_list(sorted(set(paths))),))}
            for r in records:
                pid = photo_ids.get(r.sha256)
                if pid is None:  # its photo was pruned meanwhile: the next run analyses it again
                    continue
                if r.moved_from is not None and r.moved_from in before and r.path not in before:
                    g._db.run(g._sql("UPDATE {s}files SET path = ?, photo_id = ?, size = ?, mtime_ns = ? "
                                     "WHERE path = ?"), (r.path, pid, r.size, r.mtime_ns, r.moved_from))
                    continue
                g._db.run(g._sql("INSERT INTO {s}files (path, photo_id, size, mtime_ns) VALUES (?, ?, ?, ?) "
                                 "ON CONFLICT (path) DO UPDATE SET photo_id = excluded.photo_id, size = excluded.size, "
                                 "mtime_ns = excluded.mtime_ns"), (r.path, pid, r.size, r.mtime_ns))
            removed += self._forget_orphans(set(before.values()) - set(photo_ids.values()))
            self._count_removals(removed)

    def prune(self, paths: list[str]) -> int:
        """Forget these indexed paths (files that are gone), and the photos no other file holds; how many."""
        if not paths:
            return 0
        g = self.g
        with g._write():
            g._db.lock_enrolls()
            ids = g._db.dialect.id_list(sorted(set(paths)))
            photos = {pid for (pid,) in g._rows("SELECT photo_id FROM {s}files WHERE {ids:path}", (ids,))}
            n = g._db.run(g._sql("DELETE FROM {s}files WHERE {ids:path}"), (ids,)).rowcount
            self._count_removals(self._forget_orphans(photos))
        return int(n)

    def set_clusters(self, assigned: dict[int, int]) -> None:
        """Put faces (id -> cluster) in their unnamed clusters, in one transaction."""
        if not assigned:
            return
        g = self.g
        with g._write():
            by_cluster: dict[int, list[int]] = {}
            for face, cluster in assigned.items():
                by_cluster.setdefault(int(cluster), []).append(int(face))
            for cluster, faces in by_cluster.items():
                g._db.run(g._sql("UPDATE {s}faces SET cluster = ? WHERE {ids:id}"),
                          (cluster, g._db.dialect.id_list(faces)))

    def _forget_orphans(self, photo_ids: set[int]) -> int:
        """Delete those of these photos that no file holds, with their faces; how many faces went."""
        if not photo_ids:
            return 0
        g = self.g
        ids = g._db.dialect.id_list(sorted(photo_ids))
        orphans = "{ids:photo_id} AND NOT EXISTS (SELECT 1 FROM {s}files WHERE files.photo_id = faces.photo_id)"
        n = g._db.run(g._sql(f"DELETE FROM {{s}}faces WHERE {orphans}"), (ids,)).rowcount
        g._db.run(g._sql("DELETE FROM {s}photos WHERE {ids:id} AND NOT EXISTS "
                         "(SELECT 1 FROM {s}files WHERE files.photo_id = photos.id)"), (ids,))
        return int(n)

    def _count_removals(self, n: int) -> None:
        """Faces went: a cached copy of the faces built before is stale."""
        if n:
            self.g._db.run(self.g._sql(
                "INSERT INTO {s}meta VALUES ('face_removals', '1') ON CONFLICT (key) "
                "DO UPDATE SET value = CAST(CAST({s}meta.value AS BIGINT) + 1 AS TEXT)"))
