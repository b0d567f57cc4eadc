"""1:N search over a gallery: exact for small galleries, an approximate index's candidates for large ones.

Up to ``EXACT_MAX`` templates (100 000), every face is scored against every
template with one matrix product: exact, and under 15 ms per query there.
Above that the gallery's own index (usearch's graph beside a file:
``fileindex``; pgvector's HNSW index inside a database: ``postgres``)
proposes ``candidates`` templates per face and their exact distances are
recomputed from the gallery's float32 templates, so every distance reported
is exact and only the choice of candidates is approximate (recall@1 is
measured by ``bench/throughput.py`` and ``bench/pgvector_search.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

from facecli.errors import BadValue
from facecli.modes import SEARCH_MODES

if TYPE_CHECKING:
    from facecli.gallery.store import Gallery
    from facecli.matching import TemplateMatrix

#: Largest gallery searched exactly by default (FACECLI_EXACT_MAX overrides).
EXACT_MAX = int(os.environ.get("FACECLI_EXACT_MAX", "100000"))


class CandidateIndex(Protocol):
    """What proposes, for a batch of faces, the templates that may be their nearest."""

    def candidates(self, faces: np.ndarray, count: int) -> np.ndarray:
        """Template ids of the ``count`` nearest templates of each face (their union)."""


def check_search(mode: str) -> str:
    if mode not in SEARCH_MODES:
        raise BadValue("search", mode, f"choose from {', '.join(SEARCH_MODES)}")
    return mode


class Searcher:
    """Finds, for a batch of faces, the templates that can be their nearest persons."""

    def __init__(self, gallery: Gallery, mode: str = "auto", candidates: int = 64,
                 log: Callable[[str], None] = lambda _m: None, whole_persons: bool = False) -> None:
        self.gallery = gallery
        self.candidates = candidates
        self.whole_persons = whole_persons  # candidates bring all their person's templates (mean templates)
        count = gallery._state().count
        self.exact = check_search(mode) == "exact" or (mode == "auto" and count <= EXACT_MAX)
        self._index: CandidateIndex | None = None if self.exact else gallery._search_index(log)

    def templates_for(self, faces: np.ndarray) -> TemplateMatrix:
        """All templates (exact search) or the union of the faces' candidates (index search)."""
        if self.exact:
            return self.gallery._templates()
        return self.gallery._templates_by_id(self._index.candidates(faces, self.candidates), self.whole_persons)
