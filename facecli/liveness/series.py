"""One face's dense meshes over time, and what the liveness checks read from each mesh: eye openness, head yaw and
pitch, the face's size.

A mesh is MediaPipe's 478 landmarks (``facemesh.FaceMesh``): x, y in image pixels, z a relative depth on the
same scale. Indices below are MediaPipe's canonical mesh; "left" and "right" are the person's own, so the
person's right eye is on the image's left in an unmirrored camera.

Every measure here is a ratio of distances, so it does not change with the face's size or with head roll (a
tilted head keeps its ratios); eye openness is also divided by the face's own height-to-width ratio, so a head
that nods (or a photo tilted back) does not look like closing eyes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

#: per eye (the person's right, then left): outer corner, inner corner, then three upper-lid / lower-lid pairs
EYES = ((33, 133, ((160, 144), (159, 145), (158, 153))),
        (263, 362, ((387, 373), (386, 374), (385, 380))))
#: nose bridge between the eyes, and the base of the nose: a vertical span that talking and brows leave alone
BRIDGE, NOSE_BASE = 168, 2
#: the cheeks' outer points (person's right, left) and the top of the forehead: the head's yaw and pitch axes
CHEEK_RIGHT, CHEEK_LEFT, FOREHEAD = 234, 454, 10


@dataclass(frozen=True)
class MeshSeries:
    """One face's meshes in time order: ``times`` (T,) seconds and ``points`` (T, 478, 3) image pixels. Frames
    without the face are simply absent: the checks read the gaps from the times."""

    times: np.ndarray
    points: np.ndarray

    @classmethod
    def of(cls, frames: Iterable[tuple[float, np.ndarray]]) -> MeshSeries:
        """A series from ``(time, points)`` per frame with the face, in time order."""
        times, points = [], []
        for t, p in frames:
            if times and t <= times[-1]:
                raise ValueError(f"frame times must increase: {t} after {times[-1]}")
            times.append(float(t))
            points.append(np.asarray(p, np.float64)[:, :3])
        return cls(np.array(times, np.float64), np.array(points, np.float64).reshape(-1, 478, 3))

    def __len__(self) -> int:
        return len(self.times)

    @property
    def seconds(self) -> float:
        """How long the face was followed: first to last frame."""
        return float(self.times[-1] - self.times[0]) if len(self) else 0.0

    def between(self, start: float, end: float = np.inf) -> MeshSeries:
        """The frames timed ``start`` <= t <= ``end``."""
        keep = (self.times >= start) & (self.times <= end)
        return MeshSeries(self.times[keep], self.points[keep])


def _dist(points: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(points[..., a, :2] - points[..., b, :2], axis=-1)


def face_aspect(points: np.ndarray) -> np.ndarray:
    """Bridge-to-nose-base height over outer-eye-corner width: falls as the head nods or a photo tilts back."""
    return _dist(points, BRIDGE, NOSE_BASE) / np.maximum(_dist(points, EYES[0][0], EYES[1][0]), 1e-9)


def eye_openness(points: np.ndarray) -> np.ndarray:
    """(T, 2) openness of the person's right and left eye: the mean lid gap over the eye's width, over the face's
    aspect (``face_aspect``) so that a nod does not close the eyes."""
    out = []
    for outer, inner, lids in EYES:
        gap = np.mean([_dist(points, up, low) for up, low in lids], axis=0)
        out.append(gap / np.maximum(_dist(points, outer, inner), 1e-9))
    return np.stack(out, axis=-1) / np.maximum(face_aspect(points), 1e-9)[..., None]


def yaw(points: np.ndarray) -> np.ndarray:
    """Head yaw in degrees, positive when the person turns to their own left: the angle of the cheek-to-cheek
    line out of the image plane, from the mesh's depth."""
    v = points[..., CHEEK_LEFT, :] - points[..., CHEEK_RIGHT, :]
    return np.degrees(np.arctan2(v[..., 2], v[..., 0]))


def pitch(points: np.ndarray) -> np.ndarray:
    """Head pitch in degrees, positive when the chin goes down: the forehead-to-nose-base line out of the plane."""
    v = points[..., NOSE_BASE, :] - points[..., FOREHEAD, :]
    return np.degrees(np.arctan2(-v[..., 2], v[..., 1]))


def face_size(points: np.ndarray) -> np.ndarray:
    """The face's size in pixels: the cheek-to-cheek distance."""
    return _dist(points, CHEEK_RIGHT, CHEEK_LEFT)
