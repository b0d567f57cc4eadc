"""Which face of each photo a person is enrolled (or tuned) from.

A photo with one face gives that face. A photo with several faces (someone in the
background, a group photo) gives the face that agrees with the person's other
photos: the photos of the same run that show them alone, and, when enrolling, the
templates they have already. The face nearest to those must be within the 1:1
tau and clearly nearer than the next face (``decisions.agreeing_face``);
otherwise the photo is refused with the reason. With no other photo to compare
with, a photo with several faces still needs ``--largest`` (or a crop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from facecli import decisions, matching
from facecli.errors import FaceCliError, FaceTooSmall, InputError, SeveralFaces
from facecli.values import Face, ImageResult

#: How a photo's face was chosen.
ONLY, LARGEST, AGREEMENT = "only", "largest", "agreement"


@dataclass(frozen=True)
class Chosen:
    """The face a photo gives, how it was chosen, and with ``agreement`` its distance to the person's other
    photos and the next face's (how clearly it was chosen)."""

    face: Face
    faces: int  # in the photo
    how: str
    distance: float | None = None
    runner_up: float | None = None

    def __repr__(self) -> str:
        return f"Chosen(face={self.face.index}, faces={self.faces}, how={self.how!r}, distance={self.distance})"


def choose_faces(items: Iterable[tuple[str, ImageResult]], tau: float, largest: bool = False,
                 min_face: float = decisions.MIN_FACE,
                 enrolled: Callable[[str], np.ndarray] | None = None) -> list[Chosen | FaceCliError]:
    """For each (name, analysed photo), in order: the face it gives (``Chosen``), or the error saying why none.

    ``enrolled(name)`` gives the templates a person has already (rows of unit vectors, maybe none): with them, a
    group photo of someone enrolled before is told apart too. ``largest`` takes the largest face, as before.
    """
    items = list(items)
    chosen: list[Chosen | FaceCliError | None] = [None] * len(items)
    alone: dict[str, list[np.ndarray]] = {}
    for i, (name, result) in enumerate(items):
        if result.error:
            chosen[i] = result.error
        elif not result.faces:
            chosen[i] = InputError(result.path, "no face found")
        elif len(result.faces) == 1 or largest:
            chosen[i] = _sized(Chosen(result.faces[0], len(result.faces), ONLY if len(result.faces) == 1 else LARGEST),
                               result, min_face)
            if len(result.faces) == 1 and isinstance(chosen[i], Chosen):
                alone.setdefault(name, []).append(result.faces[0].embedding)
    for i, (name, result) in enumerate(items):
        if chosen[i] is None:
            known = [*alone.get(name, []), *(enrolled(name) if enrolled is not None else [])]
            chosen[i] = _agreeing(name, result, known, tau, min_face)
    return chosen  # type: ignore[return-value]


def _sized(c: Chosen, result: ImageResult, min_face: float) -> Chosen | FaceCliError:
    d = c.face.detection
    return FaceTooSmall(result.path, d.width, d.height, min_face) if decisions.is_too_small(d, min_face) else c


def _agreeing(name: str, result: ImageResult, known: list[np.ndarray], tau: float,
              min_face: float) -> Chosen | FaceCliError:
    """The face of a photo with several that agrees with the person's other photos (``known``), or why none."""
    n = len(result.faces)
    if not known:
        return SeveralFaces(result.path, n, f"{name} has no other photo showing one face to tell theirs by")
    faces = [f for f in result.faces if not decisions.is_too_small(f.detection, min_face)]
    if not faces:
        return _sized(Chosen(result.faces[0], n, AGREEMENT), result, min_face)
    reference = matching.mean_templates(np.stack(known))
    d = matching.sq_distances(np.stack([f.embedding for f in faces]), reference)[:, 0]
    pick, why = decisions.agreeing_face([float(x) for x in d], tau)
    nearest = sorted(range(len(faces)), key=lambda j: d[j])
    if pick is None and why == "none agrees":
        return InputError(result.path, f"none of its {n} faces looks like {name}'s other photos (nearest at "
                                       f"distance {d[nearest[0]]:.3f}, tau {tau:.3f})")
    if pick is None:
        a, b = (faces[j] for j in nearest[:2])
        return InputError(result.path, f"faces {a.index + 1} and {b.index + 1} of {n} both look like {name}'s "
                                       f"other photos (distances {d[nearest[0]]:.3f} and {d[nearest[1]]:.3f}): "
                                       "crop the photo")
    runner_up = float(d[nearest[1]]) if len(faces) > 1 else None
    return Chosen(faces[pick], n, AGREEMENT, float(d[pick]), runner_up)
