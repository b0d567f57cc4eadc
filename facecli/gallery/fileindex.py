"""The file gallery's search index: usearch's HNSW graph beside the file, for galleries above ``search.EXACT_MAX``.

The graph holds the templates as int8 (4x smaller than float32) and
proposes candidates; ``search.Searcher`` recomputes their exact distances.
It lives beside the gallery (``gallery.db.usearch`` plus a small JSON that
says which gallery state it reflects). When people are enrolled it is
extended in place; when anyone is removed, or the files disagree, it is
rebuilt. It is derived data: deleting it only costs a rebuild; a file
another user could have written is not trusted, and is rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facecli.errors import FaceCliError
from facecli.private import new_file, publish, trusted
from facecli.stamps import file_stamp, read_json, write_json

if TYPE_CHECKING:
    from facecli.gallery.store import Gallery

#: HNSW graph settings (bench/throughput.py measured them; see bench/RESULTS.md). A change rebuilds indexes.
HNSW = {"connectivity": 16, "expansion_add": 128, "dtype": "i8"}
#: Breadth of each query's graph walk: more finds the true nearest more often, and costs time.
EXPANSION_SEARCH = 256
_BUILD_CHUNK = 50_000


class TemplateIndex:
    """The HNSW index of one gallery's templates, keyed by template id."""

    def __init__(self, index: Any) -> None:
        self.index = index
        self.index.expansion_search = EXPANSION_SEARCH

    @staticmethod
    def paths(gallery_path: Path) -> tuple[Path, Path]:
        return gallery_path.with_name(gallery_path.name + ".usearch"), \
            gallery_path.with_name(gallery_path.name + ".usearch.json")

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray | None = None) -> TemplateIndex:
        """A new in-memory index of these unit vectors, keyed by ``ids`` (default: their row numbers)."""
        index = _new_index(vectors.shape[1])
        keys = np.arange(len(vectors)) if ids is None else ids
        index.add(np.asarray(keys, dtype=np.uint64), np.asarray(vectors, dtype=np.float32), threads=0)
        return cls(index)

    @classmethod
    def for_gallery(cls, gallery: Gallery, path: Path, log: Callable[[str], None] = lambda _m: None) -> TemplateIndex:
        """The gallery's index, brought up to date (extended, or rebuilt) first if needed."""
        # usearch: loaded only for a gallery searched through its index
        from usearch.index import Index

        index_path, meta_path = cls.paths(path)
        state = gallery._state()
        meta = read_json(meta_path) if trusted(index_path, "search index") and trusted(meta_path, "search index") \
            else None
        meta = meta if isinstance(meta, dict) else None
        fresh = (meta is not None and index_path.exists() and meta.get("stamp") == file_stamp(index_path)
                 and meta.get("model") == state.model and meta.get("dim") == state.dim
                 and meta.get("removals") == state.removals and meta.get("hnsw") == HNSW)
        if fresh and meta["max_id"] == state.max_id and meta["count"] == state.count:
            return cls(Index.restore(str(index_path), view=True))  # memory-mapped: opens at once
        if fresh and gallery._count_up_to(meta["max_id"]) == meta["count"]:
            index = Index.restore(str(index_path))
            log(f"index {index_path.name}: adding {state.count - meta['count']} new templates")
            after = meta["max_id"]
        else:
            index = _new_index(state.dim)
            log(f"index {index_path.name}: building over {state.count} templates")
            after = 0
        for ids, vectors in gallery._iter_embeddings(after, _BUILD_CHUNK):
            index.add(ids.astype(np.uint64), vectors, threads=0)
        meta = {"model": state.model, "dim": state.dim, "count": state.count, "max_id": state.max_id,
                "removals": state.removals, "hnsw": HNSW}
        _save(index, meta, index_path, meta_path)
        return cls(index)

    def candidates(self, faces: np.ndarray, count: int) -> np.ndarray:
        """Template ids of the ``count`` nearest templates of each face (fewer if the index is smaller)."""
        count = min(count, len(self.index))
        if count == 0 or len(faces) == 0:
            return np.empty(0, dtype=np.int64)
        matches = self.index.search(faces.astype(np.float32), count, threads=0)
        keys = np.asarray(matches.keys).reshape(len(faces), -1)
        return np.unique(keys[keys != np.iinfo(np.uint64).max]).astype(np.int64)


def _new_index(dim: int) -> Any:
    # usearch: loaded only for a gallery searched through its index
    from usearch.index import Index

    return Index(ndim=dim, metric="ip", **HNSW)


def _save(index: Any, meta: dict[str, Any], index_path: Path, meta_path: Path) -> None:
    """Write the index, then the meta that vouches for it; a reader in between sees a stale index."""
    try:
        with new_file(index_path.parent, index_path.name) as (_fd, tmp):  # 0600: derived from biometric templates
            index.save(str(tmp))
            publish(tmp, index_path)
        write_json(meta_path, {**meta, "stamp": file_stamp(index_path)})
    except (OSError, FaceCliError):
        pass  # a read-only folder, or something in the way: the index served this run and is rebuilt next time
