"""What a stored row must look like to be used: templates, face boxes and the head record, checked as they are read.

A damaged row is an error that names it, never a match: a template scaled by
1000, with an infinite component, or whose bytes are misaligned would
otherwise sit at distance 0 from strangers. ``Gallery.check`` reports every
such row with the same words.
"""

from __future__ import annotations

import json
import re

import numpy as np

from facecli.errors import GalleryError
from facecli.values import HeadRecord

#: How far from 1 a stored template's norm may be (float32 rounding is ~1e-7): anything else is damage.
NORM_TOLERANCE = 1e-3


def template_problem(vector: np.ndarray | None, dim: int) -> str | None:
    """Why a stored template cannot be matched against (wrong size, not finite, not unit length), or None."""
    if vector is None:
        return "not a vector of float32 values"
    if vector.shape != (dim,):
        return f"{vector.size} values, expected {dim}"
    if not np.isfinite(vector).all():
        return "values that are not finite"
    norm = float(np.linalg.norm(vector))
    if not abs(norm - 1.0) < NORM_TOLERANCE:
        return f"norm {norm:.4f}, expected 1"
    return None


def checked_matrix(vectors: np.ndarray | list[np.ndarray | None], ids: list[int], dim: int,
                   location: str) -> np.ndarray:
    """Decoded templates (a matrix, or one vector each) as one (T, dim) float32 matrix when every one is finite,
    of unit length and of the gallery's size; else an error naming the first damaged template."""
    if len(vectors) == 0:
        return np.empty((0, dim), dtype=np.float32)
    if isinstance(vectors, list):
        for i, v in enumerate(vectors):
            if v is None or v.shape != (dim,):
                raise damaged(location, ids[i], template_problem(v, dim))
    matrix = np.asarray(np.stack(vectors) if isinstance(vectors, list) else vectors, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        sound = np.isfinite(matrix).all(axis=1) & (np.abs(np.linalg.norm(matrix, axis=1) - 1.0) < NORM_TOLERANCE)
    if not sound.all():
        i = int(np.argmin(sound))
        raise damaged(location, int(ids[i]), template_problem(matrix[i], dim))
    return matrix


def damaged(location: str, template: int, problem: str | None) -> GalleryError:
    return GalleryError(location, f"template {template} is damaged ({problem}); see `facecli gallery check`")


def head_problem(meta: dict[str, str]) -> str | None:
    """Why meta's head record is not what facecli writes (both keys, a sha256 and a path), or None."""
    sha, path = meta.get("head_sha256"), meta.get("head_path")
    if sha is None and path is None:
        return None
    if sha is None or not path or not re.fullmatch(r"[0-9a-f]{64}", sha):
        return f"meta head_sha256 {str(sha)[:40]!r}, head_path {str(path)[:40]!r} is not a head record facecli writes"
    return None


def head_record(meta: dict[str, str], location: str) -> HeadRecord | None:
    """The head meta records (None: none), or an error when the record is damaged."""
    problem = head_problem(meta)
    if problem is not None:
        raise GalleryError(location, f"{problem}; see `facecli gallery check`")
    return None if "head_sha256" not in meta else HeadRecord(meta["head_sha256"], meta["head_path"])


def _parsed_box(text: object) -> list[float] | None:
    """A stored box as the four numbers facecli writes, or None when it is not that."""
    try:
        box = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    ok = isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)
    return box if ok else None


def box_problem(text: object) -> str | None:
    """Why a stored box is not the JSON list of four numbers facecli writes, or None."""
    return None if _parsed_box(text) is not None else f"box {str(text)[:40]!r} is not four numbers"


def stored_box(text: object, template: int, location: str) -> list[float]:
    """A stored face box, or an error naming the template whose box is not what facecli writes."""
    box = _parsed_box(text)
    if box is None:
        raise damaged(location, template, box_problem(text))
    return box


def box_text(box: tuple[float, float, float, float]) -> str:
    """How a face box is stored: JSON, to a tenth of a pixel."""
    return json.dumps([round(v, 1) for v in box])
