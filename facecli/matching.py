"""Distances and 1:N decisions: squared L2 between unit embeddings, against tau.

For unit vectors ``||a - b||^2 = 2 - 2 a.b``, so all faces of a batch are
scored against all templates with one matrix product (through a projection
head when the faces have one: ``face_vectors``). A person with several
templates is represented by their mean, scaled back to unit length (``mean``,
the default), or by whichever template is nearest (``best``): on LFW with two
photos enrolled per person the mean names more people at the same FPIR
(bench/ACCURACY.md). With one template both are the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from facecli.errors import BadValue, FaceCliError
from facecli.modes import TEMPLATE_MODES
from facecli.values import Candidate, Decision, Face, Threshold


@dataclass(frozen=True)
class TemplateMatrix:
    """Templates as one (T, dim) float32 matrix, rows grouped by person.

    Read once per process and matched against every batch of faces, so what is
    derived from it (each person's first row, their mean templates) is computed once.
    """

    names: list[str]  # one per person
    person_of_row: np.ndarray  # (T,) index into names
    matrix: np.ndarray  # (T, dim), unit rows
    ids: np.ndarray  # (T,) template ids

    @cached_property
    def starts(self) -> np.ndarray:
        """The first row of each person."""
        return np.flatnonzero(np.r_[True, np.diff(self.person_of_row) != 0])

    @cached_property
    def means(self) -> np.ndarray:
        """(P, dim): each person's mean template, unit length (``mean_templates``)."""
        return mean_templates(self.matrix, self.starts)


def check_templates(mode: str) -> None:
    if mode not in TEMPLATE_MODES:
        raise BadValue("templates", mode, f"choose from {', '.join(TEMPLATE_MODES)}")


def sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, D) x (M, D) unit rows -> (N, M) squared L2 distances in [0, 4]."""
    return np.clip(2.0 - 2.0 * (a @ b.T), 0.0, 4.0)


def face_vectors(faces: list[Face]) -> np.ndarray:
    """(F, D): what these faces are compared by: their embeddings, through their projection head when they have
    one (``Face.head``: every face of one engine has the same)."""
    heads = {None if f.head is None else f.head.sha256 for f in faces}
    if len(heads) > 1:
        raise FaceCliError("faces", "embedded through different projection heads: they cannot be compared")
    vectors = np.stack([f.embedding for f in faces])
    return vectors if faces[0].head is None else faces[0].head.apply(vectors)


def closest_pair(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """The rows (i of ``a``, j of ``b``) at the smallest distance, and that distance."""
    d = sq_distances(a, b)
    i, j = np.unravel_index(int(np.argmin(d)), d.shape)
    return int(i), int(j), float(d[i, j])


def mean_templates(templates: np.ndarray, starts: np.ndarray | None = None) -> np.ndarray:
    """One unit vector per person standing for their templates: the rows from each of ``starts``
    (the first row of each person; default: all rows are one person's), averaged, unit length.

    Summed one template rank at a time across all persons (the k-th template of
    everyone who has k): as many vector steps as the most templates anyone has,
    where ``np.add.reduceat`` over 100 000 one-row persons takes seconds.
    """
    rows = np.asarray(templates, dtype=np.float32)
    starts = np.zeros(1, dtype=np.int64) if starts is None else np.asarray(starts)
    counts = np.diff(np.r_[starts, len(rows)])
    sums = rows[starts].copy()
    for k in range(1, int(counts.max(initial=1))):
        more = counts > k
        sums[more] += rows[starts[more] + k]
    return sums / np.linalg.norm(sums, axis=1, keepdims=True)


def person_references(templates: np.ndarray, mode: str) -> np.ndarray:
    """What a probe is compared with for one person: their mean template, or every template (``best``)."""
    check_templates(mode)
    return mean_templates(templates) if mode == "mean" else templates


def person_distances(faces: np.ndarray, gallery: TemplateMatrix, templates: str = "mean") -> np.ndarray:
    """(F, P): each face's distance to each person (see the module's docstring for ``templates``)."""
    check_templates(templates)
    if gallery.matrix.shape[0] == 0:
        return np.empty((len(faces), 0), dtype=np.float32)
    if templates == "mean":
        return sq_distances(faces, gallery.means)
    # rows of the matrix are grouped by person: the nearest of each run of rows
    return np.minimum.reduceat(sq_distances(faces, gallery.matrix), gallery.starts, axis=1)


def identify(faces: np.ndarray, gallery: TemplateMatrix, threshold: Threshold, top_k: int = 1,
             templates: str = "mean") -> list[Decision]:
    """1:K decisions for a batch of face embeddings: the nearest person if within tau, else nobody."""
    per_person = person_distances(faces, gallery, templates)
    decisions = []
    k = max(1, min(top_k, per_person.shape[1]))
    for row in per_person:
        if row.size == 0:
            decisions.append(Decision(None, None, [], threshold))
            continue
        top = np.argpartition(row, k - 1)[:k] if k < row.size else np.arange(row.size)
        top = top[np.argsort(row[top], kind="stable")]
        cands = [Candidate(gallery.names[i], float(row[i])) for i in top]
        best = cands[0]
        decisions.append(Decision(best.name if best.distance <= threshold.tau else None, best.distance, cands,
                                  threshold))
    return decisions
