"""Group faces by person without a gallery: agglomerative clustering on squared L2.

Two linkages, cut at tau:

- ``average`` (the default): clusters merge while the mean distance between
  their members is at most tau. One mistaken close pair cannot join two
  people, which is what goes wrong with chaining on large photo sets.
- ``single``: connected components of the graph "distance ≤ tau" (FaceNet's
  own clustering example does this); the most permissive choice.

Both work on the full distance matrix: O(n²) memory, fine for the faces of a
few thousand photos (10 000 faces take 400 MB).
"""

from __future__ import annotations

import numpy as np

from facecli.errors import BadValue
from facecli.matching import sq_distances
from facecli.modes import LINKAGES


def cluster(embeddings: np.ndarray, tau: float, linkage: str = "average") -> np.ndarray:
    """A cluster label per row, numbered 0.. by decreasing cluster size (ties: first member first)."""
    if linkage not in LINKAGES:
        raise BadValue("linkage", linkage, f"choose from {', '.join(LINKAGES)}")
    n = len(embeddings)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    d = sq_distances(embeddings, embeddings).astype(np.float64)
    roots = _single(d, tau) if linkage == "single" else _average(d, tau)
    _, first, inverse, counts = np.unique(roots, return_index=True, return_inverse=True, return_counts=True)
    order = sorted(range(len(counts)), key=lambda c: (-counts[c], first[c]))
    rank = np.empty(len(counts), dtype=np.int64)
    rank[order] = np.arange(len(counts))
    return rank[inverse]


def _single(d: np.ndarray, tau: float) -> np.ndarray:
    parent = np.arange(len(d))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(d <= tau, k=1))):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return np.array([find(i) for i in range(len(d))])


def _average(d: np.ndarray, tau: float) -> np.ndarray:
    """Average linkage by the Lance-Williams update, keeping each row's nearest cluster."""
    n = len(d)
    d = d.copy()
    np.fill_diagonal(d, np.inf)
    size = np.ones(n)
    owner = np.arange(n)  # cluster each original face belongs to (a surviving row index)
    nearest = np.argmin(d, axis=1)
    while True:
        best = d[np.arange(n), nearest]
        i = int(np.argmin(best))
        if not best[i] <= tau:
            break
        j = int(nearest[i])
        i, j = min(i, j), max(i, j)  # keep the lower index: labels follow the first member
        merged = (size[i] * d[i] + size[j] * d[j]) / (size[i] + size[j])
        d[i], d[:, i] = merged, merged
        d[i, i] = np.inf
        d[j], d[:, j] = np.inf, np.inf
        size[i] += size[j]
        owner[owner == j] = i
        stale = (nearest == i) | (nearest == j)
        stale[i] = True
        for k in np.flatnonzero(stale):
            nearest[k] = int(np.argmin(d[k]))
        closer = d[:, i] < d[np.arange(n), nearest]
        nearest[closer] = i
    return owner
