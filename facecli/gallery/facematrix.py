"""The indexed faces' embeddings as one float32 matrix, kept in a private file so that ``find`` reads no rows.

``find`` scores every indexed face against a person: at 100 000 faces the
matrix is 256 MB (640-d fusion), read in seconds from the database but
memory-mapped in milliseconds from a ``.npy``. So the matrix, with each
face's id, photo and size, is cached: beside a file gallery
(``gallery.db.faces.npy``), in facecli's private cache for a database one,
in memory for ``:memory:``. It is derived data, trusted only while its
JSON says it reflects this gallery (its creation time) and its current faces
(count, largest id, removals, as ``fileindex`` does for templates) and it is
private (0600, ours);
new faces are appended, any removal rebuilds it. A folder that cannot be
written only costs the cache: the matrix is then read from the gallery.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facecli.errors import FaceCliError
from facecli.gallery.photos import PhotoIndex
from facecli.paths import cache_dir
from facecli.private import make_private_dir, new_file, publish, trusted
from facecli.stamps import file_stamp, read_json, write_json

if TYPE_CHECKING:
    from facecli.gallery.store import Gallery


@dataclass(frozen=True)
class FaceMatrix:
    ids: np.ndarray  # (N,) face ids
    photos: np.ndarray  # (N,) photo ids
    sizes: np.ndarray  # (N,) face sizes in pixels
    matrix: np.ndarray  # (N, dim) unit base-model embeddings


def face_matrix(gallery: Gallery) -> FaceMatrix:
    """Every indexed face of ``gallery``, from the cache when it is current (brought up to date first)."""
    index = PhotoIndex(gallery)
    state = index.state()
    key = f"faces {state}"
    if key in gallery._derived:
        return gallery._derived[key]
    if state.count == 0:  # nothing indexed (or an older schema without the index): nothing to read or keep
        return FaceMatrix(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32),
                          np.empty((0, state.dim), np.float32))
    where = _cache_path(gallery)
    rows, matrix = _load(where, state, index) if where is not None else (None, None)
    if rows is None:
        rows, matrix = _read(index, 0, state.dim)
        if where is not None:
            _save(where, state, rows, matrix)
    found = FaceMatrix(rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64), rows[:, 2].astype(np.float32),
                       matrix)
    gallery._derived[key] = found
    return found


def _read(index: PhotoIndex, after: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    parts = list(index.iter_faces(after))
    if not parts:
        return np.empty((0, 3)), np.empty((0, dim), np.float32)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _cache_path(gallery: Gallery) -> Path | None:
    """Where the cache of this gallery lives: beside its file, in the private cache for a database (by its
    location and creation time), nowhere for one in memory."""
    path = getattr(gallery._db, "path", "database")
    if path is None:
        return None
    if isinstance(path, Path):
        return path.with_name(path.name + ".faces")
    key = hashlib.sha256(f"{gallery.location}\0{gallery.meta().get('created')}".encode()).hexdigest()[:32]
    return cache_dir() / "faces" / key


def _load(where: Path, state, index: PhotoIndex) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The cached rows and matrix if they reflect ``state`` (extended with new faces if only those are
    missing), else (None, None)."""
    matrix_path, rows_path, meta_path = _files(where)
    if not all(p.exists() and trusted(p, "face cache") for p in (matrix_path, rows_path, meta_path)):
        return None, None
    meta = read_json(meta_path)
    expected = {"model": state.model, "dim": state.dim, "removals": state.removals, "gallery": state.created}
    if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in expected.items()) \
            or meta.get("stamps") != [file_stamp(matrix_path), file_stamp(rows_path)]:
        return None, None
    try:
        rows, matrix = np.load(rows_path), np.load(matrix_path, mmap_mode="r")
    except (OSError, ValueError):
        return None, None
    if len(rows) != meta.get("count") or matrix.shape != (len(rows), state.dim):
        return None, None
    if meta.get("max_id") == state.max_id and meta.get("count") == state.count:
        return rows, matrix
    if index.count_up_to(meta["max_id"]) != meta["count"]:
        return None, None
    more_rows, more = _read(index, meta["max_id"], state.dim)
    rows, matrix = np.concatenate([rows, more_rows]), np.concatenate([matrix, more])
    _save(where, state, rows, matrix)
    return rows, matrix


def _save(where: Path, state, rows: np.ndarray, matrix: np.ndarray) -> None:
    """Write the matrix and rows, then the JSON that vouches for them; a failure only costs the cache."""
    matrix_path, rows_path, meta_path = _files(where)
    try:
        make_private_dir(where.parent)
        for target, array in ((matrix_path, matrix), (rows_path, rows)):
            with new_file(target.parent, target.name) as (fd, tmp):  # 0600: embeddings are biometric data
                with open(fd, "wb", closefd=False) as fh:
                    np.save(fh, np.ascontiguousarray(array))
                publish(tmp, target)
        write_json(meta_path, {"model": state.model, "dim": state.dim, "gallery": state.created, "count": len(rows),
                               "max_id": int(rows[:, 0].max(initial=0)), "removals": state.removals,
                               "stamps": [file_stamp(matrix_path), file_stamp(rows_path)]})
    except (OSError, FaceCliError):
        pass


def _files(where: Path) -> tuple[Path, Path, Path]:
    return (where.with_name(where.name + ".npy"), where.with_name(where.name + "-rows.npy"),
            where.with_name(where.name + ".json"))
