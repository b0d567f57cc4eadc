"""The tuning set: a labelled folder (``enroll --dir``'s layout) embedded as enrollment embeds it.

Each photo contributes the one face enroll would take (``facecli.choosing``:
refused when it has no face, one under ``min_face`` pixels, or several of
which none clearly agrees with the person's other photos, unless
``largest``), embedded by the engine's own pipeline, so the head
learns on the embeddings it will map at match time. Enroll's rule rather
than the evaluations' central face: a photo with several faces has no
certain label, and a centre crop of a faceless photo is no face at all;
either would teach the head a wrong pair. The same photo (by content
sha256) under two names is kept under the first only (one photo, one
person); twice under one name, once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from facecli.decisions import MIN_FACE
from facecli.errors import FaceCliError, InputError
from facecli.tune.train import Labelled

if TYPE_CHECKING:
    from facecli.engine import Engine


def embed_people(engine: Engine, items: list[tuple[str, str]], largest: bool = False, min_face: float = MIN_FACE,
                 on_image: Callable[[], None] = lambda: None) -> tuple[Labelled, list[FaceCliError]]:
    """(name, photo) pairs as a ``Labelled`` set of base embeddings (ids: the photos' sha256), and the photos
    left out with the reason."""
    vectors: list[np.ndarray] = []
    people: list[str] = []
    ids: list[str] = []
    errors: list[FaceCliError] = []
    holder: dict[str, str] = {}
    for name, result, chosen in engine.enroll_faces(items, largest, min_face, on_image):
        if isinstance(chosen, FaceCliError):
            errors.append(chosen)
            continue
        first = holder.get(result.sha256)
        if first is not None:  # the same photo again: under another name it is refused, under its own kept once
            if first != name:
                errors.append(InputError(result.path, f"the same photo is already in the set as {first}"))
            continue
        holder[result.sha256] = name
        vectors.append(chosen.face.embedding)
        people.append(name)
        ids.append(result.sha256)
    matrix = np.stack(vectors) if vectors else np.empty((0, engine.dim), np.float32)
    return Labelled(matrix, people, engine.model, ids), errors
