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

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from facecli.decisions import is_ambiguous
from facecli.errors import BadValue, FaceCliError, InputError
from facecli.modes import TEMPLATE_MODES
from facecli.values import Candidate, Decision, Face, Threshold

if TYPE_CHECKING:
    from facecli.heads import LoadedHead


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
    head = _common_head(faces)
    vectors = np.stack([f.embedding for f in faces])
    return vectors if head is None else head.apply(vectors)


def _common_head(faces: list[Face]) -> LoadedHead | None:
    """The projection head all these faces are matched through (None: none), refused if they differ."""
    heads = {None if f.head is None else f.head.sha256 for f in faces}
    if len(heads) > 1:
        raise FaceCliError("faces", "embedded through different projection heads: they cannot be compared")
    return faces[0].head if faces else None


def distance(a: Face | Sequence[Face] | np.ndarray, b: Face | Sequence[Face] | np.ndarray) -> float | np.ndarray:
    """Squared L2 distance between faces or embeddings, as ``verify`` and identify compare them (a smaller distance
    is more alike; the same person is within tau): a float for one against one, else an array, (N,) for one
    against N or N against one, (N, M) for N against M.

    Each side is a ``Face``, a list of them (``Engine.faces``), a 1-D embedding or an (N, D) array. Faces are
    compared through their projection head when they have one (``face_vectors``); an embedding given as an
    array is the base model's, as ``Face.embedding`` and a gallery's templates are, and goes through the
    faces' head too (two arrays: as they are).
    """
    (ra, one_a, fa), (rb, one_b, fb) = _rows(a), _rows(b)
    head = _common_head(fa + fb)
    if head is not None:
        ra, rb = (head.apply(r) if len(r) else np.empty((0, head.out_dim), np.float32) for r in (ra, rb))
    if len(ra) and len(rb) and ra.shape[1] != rb.shape[1]:
        raise FaceCliError("embeddings", f"of different sizes ({ra.shape[1]} and {rb.shape[1]}): embedded by "
                                         "different models, they cannot be compared")
    if not len(ra) or not len(rb):
        return np.empty((len(ra),) if one_b else (len(rb),) if one_a else (len(ra), len(rb)), np.float32)
    d = np.maximum(np.sum(ra * ra, axis=1)[:, None] + np.sum(rb * rb, axis=1)[None, :] - 2.0 * (ra @ rb.T), 0.0)
    return float(d[0, 0]) if one_a and one_b else d[0] if one_a else d[:, 0] if one_b else d


def _rows(x: Face | Sequence[Face] | np.ndarray) -> tuple[np.ndarray, bool, list[Face]]:
    """One side of ``distance``: its (N, D) base embeddings, whether it is a single one, and its faces (none:
    given as an array)."""
    faces = [x] if isinstance(x, Face) else list(x) if isinstance(x, Sequence) and x and all(
        isinstance(f, Face) for f in x) else None
    if faces is not None:
        if any(f.embedding is None for f in faces):
            raise InputError("<face>", "has no embedding (found by an engine loaded with embed=False)")
        return np.stack([f.embedding for f in faces]).astype(np.float32, copy=False), isinstance(x, Face), faces
    rows = np.asarray(x, dtype=np.float32)
    if rows.ndim == 1 and not len(rows):  # an empty list: no faces
        return rows.reshape(0, 0), False, []
    if rows.ndim not in (1, 2):
        raise BadValue("embeddings", f"of shape {rows.shape}", "give a Face, a list of Faces, a 1-D embedding "
                                                                "or an (N, D) array")
    return rows.reshape(1, -1) if rows.ndim == 1 else rows, rows.ndim == 1, []


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
    """1:K decisions for a batch of face embeddings: the nearest person if within tau, else nobody; and nobody
    either when the second-nearest person is within the threshold's ``min_gap`` of the nearest (ambiguous: on
    such a face the name would be a toss-up between two people)."""
    per_person = person_distances(faces, gallery, templates)
    if per_person.shape[1] == 0:
        return [Decision(None, None, [], threshold) for _ in range(len(per_person))]
    k = max(1, min(top_k, per_person.shape[1]))
    kept = min(max(k, 2), per_person.shape[1])  # the runner-up too, for the gap
    # each row's nearest, nearest first, all rows at once
    top = np.argpartition(per_person, kept - 1, axis=1)[:, :kept] if kept < per_person.shape[1] else \
        np.broadcast_to(np.arange(per_person.shape[1]), per_person.shape)
    nearest = np.take_along_axis(per_person, top, axis=1)
    order = np.lexsort((top, nearest), axis=1)  # by distance, a tie by the person's order
    top, nearest = np.take_along_axis(top, order, axis=1), np.take_along_axis(nearest, order, axis=1)
    names = gallery.names
    decisions = []
    for people, dists in zip(top.tolist(), nearest.tolist()):
        cands = [Candidate(names[i], d) for i, d in zip(people[:k], dists[:k])]
        decisions.append(decide_nearest(cands, dists[1] if len(dists) > 1 else None, threshold))
    return decisions


def decide_nearest(candidates: list[Candidate], runner_up: float | None, threshold: Threshold) -> Decision:
    """The 1:N decision for a face's nearest people (``candidates``, nearest first) and the second-nearest
    person's distance (None: there is no other): the nearest if within tau and not ambiguous, else nobody."""
    within = candidates[0].distance <= threshold.tau
    ambiguous = bool(within and is_ambiguous(candidates[0].distance, runner_up, threshold.min_gap))
    return Decision(candidates[0].name if within and not ambiguous else None, candidates[0].distance, candidates,
                    threshold, ambiguous=ambiguous)
