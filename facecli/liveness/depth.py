"""Whether a face moves like a flat picture: every point of a photo (printed or on a screen) moved in front of the
camera moves by one plane's homography between two frames; the points of a real head that turns do not, its
nose moving against its cheeks (parallax), its mouth and brows moving on their own.

The points are the face's own texture, followed from frame to frame by pyramidal Lucas-Kanade (``FaceTracker``):
corners inside the mesh's face outline, eyes left out (a blink breaks a track), each track checked forwards and
backwards and dropped once it leaves the face. The mesh's landmarks themselves do not serve: the mesh model
fits a 3D face to whatever it sees, so a tilted photo's landmarks also leave its plane (bench/liveness.py
measured ratios of 0.2-0.7 on prints, 0.5-0.9 on live faces with them: no threshold between).

For each segment of tracks (a set of points seeded together, followed until too few remain or ``SEGMENT``
seconds pass) and each later frame, in units of the face's size (cheek to cheek):

- ``motion``: how far the points' shape changed, the rms residual after the best similarity (shift, turn in
  the image plane, scale): a picture slid, turned or brought nearer, like a head that only does so, changes
  nothing here and tells nothing;
- ``residual``: the rms residual after the least-squares homography.

Their ratio is what a plane cannot explain of the change: near 0 for a flat picture (the tracker's noise), a
good part of it for a head. The ``TOP_PAIRS`` pairs that changed most decide, by their median; with fewer than
``MIN_PAIRS`` pairs of at least ``MIN_MOTION``, the motion is too small to tell (None): a photo held still and a
head held still look alike here, and the blink check decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facecli.liveness.series import face_size

#: the mesh's face outline, in order
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
             149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
#: each eye's outline (the person's right, then left), left out of the tracked area
EYE_OUTLINES = ((33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
                (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466))
#: corners seeded per segment, and the fewest tracked points a frame needs
MAX_POINTS, MIN_POINTS = 150, 12
#: a segment ends when fewer than this share of its points are still followed, or after SEGMENT seconds
MIN_ALIVE, SEGMENT = 0.5, 2.0
#: largest gap between frames a track survives, seconds
MAX_GAP = 0.25
#: forward-backward error (face sizes) above which a tracked point is dropped
MAX_FB = 0.01
#: shape change (rms residual after a similarity, in face sizes) from which a pair tells a plane from a head
MIN_MOTION = 0.01
#: pairs of at least MIN_MOTION needed for a verdict
MIN_PAIRS = 5
#: the pairs that changed most, whose ratios decide
TOP_PAIRS = 20
#: below this share of the change left unexplained by a plane, the face is flat
FLAT_RATIO = 0.35


@dataclass(frozen=True)
class Depth:
    """``flat``: True (moves like a plane), False (does not), None (too little motion to tell); ``ratio``: the
    median share of the change a homography leaves, over ``pairs`` pairs of median ``motion`` (face sizes);
    ``residual``: their median residual after the homography (face sizes)."""

    flat: bool | None
    ratio: float | None
    residual: float | None
    motion: float
    pairs: int

    def as_dict(self) -> dict[str, object]:
        return {"flat": self.flat, "ratio": _round(self.ratio), "residual": _round(self.residual),
                "motion": _round(self.motion), "pairs": self.pairs}


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


@dataclass
class Segment:
    """Points seeded together on one frame and followed: ``times`` (one per frame), ``points`` (each (K, 2),
    NaN once lost), ``size``: the face's size on the first frame; ``changes``: (time, motion, residual) from the
    first frame to each later one, measured as the frame is added."""

    size: float
    times: list[float] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)
    changes: list[tuple[float, float, float]] = field(default_factory=list)

    def add(self, time: float, points: np.ndarray) -> None:
        self.times.append(time)
        self.points.append(points)
        both = ~np.isnan(points[:, 0])
        if both.sum() >= MIN_POINTS:
            a, b = self.points[0][both] / self.size, points[both] / self.size
            self.changes.append((time, similarity_residual(a, b), homography_residual(a, b)))


def _polygon(points: np.ndarray, indices: tuple[int, ...]) -> np.ndarray:
    return np.round(points[list(indices), :2]).astype(np.int32)


def face_mask(shape: tuple[int, ...], points: np.ndarray) -> np.ndarray:
    """uint8 mask of the face outline shrunk by a tenth of the face's size (no background or hair edge), eyes
    (grown by half) left out."""
    # OpenCV: only where frames are handled
    import cv2

    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [_polygon(points, FACE_OVAL)], 255)
    size = float(face_size(points))
    k = max(3, int(0.1 * size) | 1)
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    for eye in EYE_OUTLINES:
        outline = points[list(eye), :2]
        centre = outline.mean(axis=0)
        cv2.fillPoly(mask, [np.round(centre + 1.5 * (outline - centre)).astype(np.int32)], 0)
    return mask


def band_pass(grey: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The frame's detail between 1 and 8 pixels, each place scaled by its own contrast, around the face (a
    margin of half its size; mid-grey elsewhere): light that changes over the face (a lamp, a cloud, a screen's
    glare) otherwise drags the tracks by a pixel or two, as much as a head's parallax (a still print then read as
    3 % of its size of non-planar motion)."""
    # OpenCV: only where frames are handled
    import cv2

    margin = 0.5 * float(face_size(points)) + 16
    x0, y0 = (max(0, int(v - margin)) for v in points[:, :2].min(axis=0))
    x1, y1 = (int(v + margin) for v in points[:, :2].max(axis=0))
    out = np.full(grey.shape[:2], 128, np.uint8)
    f = grey[y0:y1, x0:x1].astype(np.float32)
    if f.size == 0:
        return out
    detail = cv2.GaussianBlur(f, (0, 0), 1.0) - cv2.GaussianBlur(f, (0, 0), 8.0)
    contrast = cv2.GaussianBlur(np.abs(detail), (0, 0), 8.0) + 2.0
    out[y0:y1, x0:x1] = np.clip(128 + 60 * detail / contrast, 0, 255).astype(np.uint8)
    return out


class FaceTracker:
    """Follows corners on one face from frame to frame (feed every frame of the face with ``add``)."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self._grey: np.ndarray | None = None
        self._time = -np.inf
        self._alive: np.ndarray | None = None

    def add(self, time: float, grey: np.ndarray, points: np.ndarray) -> None:
        """One frame: ``grey`` the whole frame (H x W uint8), ``points`` the face's mesh in it."""
        # OpenCV: only where frames are handled
        import cv2

        grey = band_pass(grey, points)
        size = float(face_size(points))
        current = self.segments[-1] if self.segments else None
        if current is not None and self._grey is not None and time - self._time <= MAX_GAP and self._alive is not None:
            last = current.points[-1]
            alive = self._alive & ~np.isnan(last[:, 0])
            moved = np.full_like(last, np.nan)
            if alive.any():
                lk = {"winSize": (21, 21), "maxLevel": 3,
                      "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)}
                src = last[alive].astype(np.float32).reshape(-1, 1, 2)
                fwd, ok1, _ = cv2.calcOpticalFlowPyrLK(self._grey, grey, src, None, **lk)
                back, ok2, _ = cv2.calcOpticalFlowPyrLK(grey, self._grey, fwd, None, **lk)
                good = (ok1.ravel() == 1) & (ok2.ravel() == 1)
                good &= np.linalg.norm((back - src).reshape(-1, 2), axis=1) <= MAX_FB * size
                inside = face_mask(grey.shape, points)
                xy = fwd.reshape(-1, 2)
                col = np.clip(np.round(xy[:, 0]).astype(int), 0, grey.shape[1] - 1)
                row = np.clip(np.round(xy[:, 1]).astype(int), 0, grey.shape[0] - 1)
                good &= inside[row, col] > 0
                idx = np.flatnonzero(alive)[good]
                moved[idx] = xy[good]
            self._alive = ~np.isnan(moved[:, 0])
            if (self._alive.sum() >= max(MIN_POINTS, MIN_ALIVE * len(last))
                    and time - current.times[0] <= SEGMENT):
                current.add(time, moved)
                self._grey, self._time = grey, time
                return
        corners = cv2.goodFeaturesToTrack(grey, MAX_POINTS, 0.01, max(3.0, size / 30),
                                          mask=face_mask(grey.shape, points))
        self._grey, self._time = grey, time
        if corners is None or len(corners) < MIN_POINTS:
            self._alive = None
            return
        seeded = Segment(size, [time], [corners.reshape(-1, 2).astype(np.float64)])
        self.segments.append(seeded)
        self._alive = np.ones(len(corners), bool)


def similarity_residual(a: np.ndarray, b: np.ndarray) -> float:
    """Rms distance left between point sets ``b`` and ``a`` (K, 2) after the best similarity mapping ``a`` onto
    ``b`` (least squares, reflections excluded)."""
    za = (a[:, 0] - a[:, 0].mean()) + 1j * (a[:, 1] - a[:, 1].mean())
    zb = (b[:, 0] - b[:, 0].mean()) + 1j * (b[:, 1] - b[:, 1].mean())
    scale = np.vdot(za, zb) / max(float(np.vdot(za, za).real), 1e-12)
    return float(np.sqrt(np.mean(np.abs(zb - scale * za) ** 2)))


def homography_residual(a: np.ndarray, b: np.ndarray) -> float:
    """Rms distance left between ``b`` and ``a`` (K, 2) after the least-squares homography mapping ``a`` onto ``b``."""
    # OpenCV: only where a homography is fitted
    import cv2

    h, _ = cv2.findHomography(a.astype(np.float64), b.astype(np.float64), 0)
    if h is None:
        return float("nan")
    p = np.c_[a, np.ones(len(a))] @ h.T
    return float(np.sqrt(np.mean(np.sum((p[:, :2] / p[:, 2:3] - b) ** 2, axis=1))))


def pair_changes(segments: list[Segment], start: float = -np.inf, end: float = np.inf) -> list[tuple[float, float]]:
    """(motion, residual) in face sizes between each segment's first frame and each of its later frames, for
    segments that begin at or after ``start`` and frames up to ``end``."""
    return [(motion, residual) for seg in segments if seg.times[0] >= start
            for t, motion, residual in seg.changes if t <= end]


def planarity(segments: list[Segment], start: float = -np.inf, end: float = np.inf) -> Depth:
    """Whether the tracked face moves like a flat picture (``Depth``), from its most changed frame pairs."""
    changes = [c for c in pair_changes(segments, start, end) if not np.isnan(c[1])]
    moved = sorted((c for c in changes if c[0] >= MIN_MOTION), reverse=True)[:TOP_PAIRS]
    if len(moved) < MIN_PAIRS:
        return Depth(None, None, None, float(max((c[0] for c in changes), default=0.0)), len(moved))
    motion = np.array([c[0] for c in moved])
    residual = np.array([c[1] for c in moved])
    ratio = float(np.median(residual / motion))
    return Depth(ratio < FLAT_RATIO, ratio, float(np.median(residual)), float(np.median(motion)), len(moved))
