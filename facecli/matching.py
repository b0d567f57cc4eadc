"""Distances and decisions: squared L2 between unit embeddings, against tau.

For unit vectors ``||a - b||^2 = 2 - 2 a.b``, so all faces of a batch are
scored against all templates with one matrix product. A person with several
templates is represented by their mean, scaled back to unit length (``mean``,
the default), or by whichever template is nearest (``best``): on LFW with two
photos enrolled per person the mean names more people at the same FPIR
(bench/ACCURACY.md). With one template both are the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facecli.errors import FaceCliError
from facecli.gallery import TemplateMatrix


def sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, D) x (M, D) unit rows -> (N, M) squared L2 distances in [0, 4]."""
    return np.clip(2.0 - 2.0 * (a @ b.T), 0.0, 4.0)


@dataclass(frozen=True)
class Candidate:
    name: str
    distance: float


@dataclass(frozen=True)
class Decision:
    """The answer for one face: ``name`` is None when nobody is within tau."""

    name: str | None
    distance: float | None  # to the nearest person, recognised or not
    candidates: list[Candidate]  # nearest first, top-k
    too_small: bool = False  # below the minimum face size: not named, whatever the distance

    @property
    def label(self) -> str:
        return decision_label(self.name, self.too_small)


def decision_label(name: str | None, too_small: bool = False) -> str:
    """What the CLI reports for a face (or a track): recognized, not recognized, or too small to identify."""
    return "too small to identify" if too_small else "recognized" if name else "not recognized"


TEMPLATE_MODES = ("mean", "best")


def check_templates(mode: str) -> None:
    if mode not in TEMPLATE_MODES:
        raise FaceCliError(f"--templates {mode}", f"choose from {', '.join(TEMPLATE_MODES)}")


def mean_templates(templates: np.ndarray, starts: np.ndarray | None = None) -> np.ndarray:
    """One unit vector per person standing for their templates: the rows from each of ``starts``
    (the first row of each person; default: all rows are one person's), averaged, unit length."""
    sums = np.add.reduceat(np.asarray(templates, dtype=np.float32), [0] if starts is None else starts, axis=0)
    return sums / np.linalg.norm(sums, axis=1, keepdims=True)


def person_distances(faces: np.ndarray, gallery: TemplateMatrix, templates: str = "mean") -> np.ndarray:
    """(F, P): each face's distance to each person (see the module's docstring for ``templates``)."""
    if gallery.matrix.shape[0] == 0:
        return np.empty((len(faces), 0), dtype=np.float32)
    # rows of the matrix are grouped by person: reduce each run of rows
    starts = np.flatnonzero(np.r_[True, np.diff(gallery.person_of_row) != 0])
    if templates == "mean":
        return sq_distances(faces, mean_templates(gallery.matrix, starts))
    return np.minimum.reduceat(sq_distances(faces, gallery.matrix), starts, axis=1)


def identify(faces: np.ndarray, gallery: TemplateMatrix, tau: float, top_k: int = 1,
             templates: str = "mean") -> list[Decision]:
    """1:K decisions for a batch of face embeddings."""
    per_person = person_distances(faces, gallery, templates)
    decisions = []
    k = max(1, min(top_k, per_person.shape[1]))
    for row in per_person:
        if row.size == 0:
            decisions.append(Decision(None, None, []))
            continue
        top = np.argpartition(row, k - 1)[:k] if k < row.size else np.arange(row.size)
        top = top[np.argsort(row[top], kind="stable")]
        cands = [Candidate(gallery.names[i], float(row[i])) for i in top]
        best = cands[0]
        decisions.append(Decision(best.name if best.distance <= tau else None, best.distance, cands))
    return decisions


def verify(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest squared distance between two sets of embeddings (faces or templates)."""
    return float(sq_distances(np.atleast_2d(a), np.atleast_2d(b)).min())
