"""Follow faces across video frames, so a person is reported once per appearance.

A track is one person seen in successive analysed frames. Each frame's faces
are matched one to one with the live tracks, the cheapest admissible pair
first. A pair is admissible when:

- **the face could have got there**: its centre lies within reach of where the
  track was heading (its last centre moved on at its measured velocity); the
  reach is half a face size plus ``REACH_PER_SECOND`` face sizes per second
  since the track was last seen, and the face is at most twice or half the
  track's size. A walker (1.5 m/s, a 16 cm face: 9.4 face widths per second)
  moves about two face widths between frames analysed at 5 per second, so
  the boxes of one person do not overlap at all from one analysed frame to
  the next;
- **it is the same person**: the face's embedding is within ``sure`` of one
  of the track's recent embeddings (``video.same_person_tau``: a distance
  that photos of different people reach once in 10,000 pairs), or within
  ``tau`` (the model's 1:1 tau, what ``verify`` calls "same") while the face
  also overlaps the track's predicted or last box (IoU at least ``min_iou``).
  Beyond ``tau`` a face never joins: a stranger stepping into the place of
  someone who just left starts a track of their own. Where no embedding can
  be compared (a face too small or too poor to identify on either side, or no tau), the
  overlap alone decides, as a box-only tracker would.

A pair's cost is its embedding distance over tau (or one minus the overlap)
plus its distance from the predicted centre over the reach. Greedy matching on
this cost is enough: two different people are rarely within tau of each
other, so a face is seldom admissible to more than one track.

A track has left once it is missing from an analysed frame and has been
unseen for more than ``max_gap`` seconds; a face that was only not looked at
(analysis slower than the gap, on a live source) has not left. The ``leave``
event is timed last seen + gap (or the previous analysed frame if later, or
the end of the video if sooner), so events come out in time order. Its name is the one recognised most often in
its frames (ties: the nearest), so one blurred frame does not rename a person.
Frames in which the face was too small or too poor to identify keep the track alive but
do not vote (and their embeddings are not compared: overlap alone joins them).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from facecli.values import Decision, Face, decision_label, iou

if TYPE_CHECKING:
    import numpy as np

Box = tuple[float, float, float, float]

#: Face sizes per second a face may move beyond where its velocity predicts (a track seen once has
#: none): a runner at 3 m/s with a 16 cm face crosses 19 face widths per second, a walker at 1.5 m/s 9.4.
#: Generous on purpose: the embedding, not the reach, tells people apart.
REACH_PER_SECOND = 20.0
#: Face sizes of slack at any time step: detector jitter, a box that changes shape.
REACH_MIN = 0.5
#: Largest change of face size between two sightings of one track.
MAX_SCALE = 2.0
#: Embeddings a track keeps (the most recent): a face that turns drifts away from its first views.
RECENT = 8


def _centre(box: Sequence[float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _size(box: Sequence[float]) -> float:
    """A face's size in pixels: the side of the square of its box's area."""
    return math.sqrt(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))


@dataclass
class Track:
    id: int
    start: float
    last_seen: float
    box: Box
    velocity: tuple[float, float] = (0.0, 0.0)  # of the box centre, pixels per second
    sightings: int = 0
    embeddings: deque = field(default_factory=lambda: deque(maxlen=RECENT))  # of faces big enough to identify
    votes: dict[str | None, int] = field(default_factory=dict)
    best: dict[str | None, float] = field(default_factory=dict)  # nearest distance per name
    reported: str | None = None
    #: the liveness check following this face (``door.LiveCheck``), and its latest verdict (``.live``, evidence)
    check: Any = None
    liveness: Any = None

    @property
    def live(self) -> bool | None:
        return None if self.liveness is None else self.liveness.live

    poor: bool = False  # seen too poor to identify (big enough, but not good enough)
    torn: bool = False  # seen ambiguous (about as near to two enrolled people)
    quality: float | None = None  # the best face quality seen

    @property
    def too_poor(self) -> bool:
        """Seen only too small, too poor or ambiguous so far, too poor at least once, and never ambiguous."""
        return not self.votes and self.poor and not self.torn

    @property
    def ambiguous(self) -> bool:
        """Seen only too small, too poor or ambiguous so far, and ambiguous at least once."""
        return not self.votes and self.torn

    @property
    def name(self) -> str | None:
        """The most frequent decision; a recognised name wins a tie with "not recognized"."""
        if not self.votes:
            return None
        return max(self.votes, key=lambda n: (self.votes[n], n is not None, -self.best[n]))

    @property
    def too_small(self) -> bool:
        """Seen only too small to identify so far."""
        return not self.votes and not self.poor and not self.torn

    @property
    def label(self) -> str:
        return decision_label(self.name, self.too_small, self.too_poor, self.ambiguous)

    def __repr__(self) -> str:  # not the embeddings it keeps
        box = ", ".join(f"{v:.1f}" for v in self.box)
        return f"Track(id={self.id}, name={self.name!r}, box=({box}), sightings={self.sightings})"

    def predicted(self, time: float) -> Box:
        """The box moved on at the track's velocity to ``time``."""
        dt = time - self.last_seen
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        x1, y1, x2, y2 = self.box
        return x1 + dx, y1 + dy, x2 + dx, y2 + dy

    def distance(self, embedding: np.ndarray) -> float | None:
        """Squared L2 from ``embedding`` to the nearest of the recent embeddings (None: none kept)."""
        if not self.embeddings:
            return None
        # numpy: loaded by the commands that handle vectors, not by --help or argument errors
        import numpy as np

        return float(np.min(np.sum((np.stack(self.embeddings) - embedding) ** 2, axis=1)))

    def add(self, face: Face, decision: Decision, time: float) -> None:
        box = face.detection.box
        if self.sightings and time > self.last_seen:
            (x0, y0), (x1, y1) = _centre(self.box), _centre(box)
            dt = time - self.last_seen
            measured = ((x1 - x0) / dt, (y1 - y0) / dt)
            # the first measurement as it is, later ones averaged with the past: one jittery box does not steer
            self.velocity = measured if self.sightings == 1 else tuple(
                (v + m) / 2 for v, m in zip(self.velocity, measured))  # type: ignore[assignment]
        self.box, self.last_seen = box, time
        self.sightings += 1
        if face.quality is not None:
            self.quality = max(self.quality or 0.0, face.quality)
        self.poor |= decision.too_poor
        self.torn |= decision.ambiguous
        if decision.too_small or decision.too_poor:
            return
        if face.embedding is not None:
            self.embeddings.append(face.embedding)
        if decision.ambiguous:  # followed by its face, but no vote: for neither of the two, nor for nobody
            return
        self.votes[decision.name] = self.votes.get(decision.name, 0) + 1
        d = decision.distance if decision.distance is not None else 4.0
        self.best[decision.name] = min(self.best.get(decision.name, 4.0), d)


@dataclass
class Event:
    kind: str  # "appear", "update" (its name changed) or "leave"
    track: Track
    time: float  # seconds; never less than the time of an event before it

    def __repr__(self) -> str:
        return f"Event(kind={self.kind!r}, track={self.track.id}, name={self.track.name!r}, time={self.time:.2f})"


class Tracker:
    """Tracks from the faces of successive frames (see the module's docstring for the rule)."""

    def __init__(self, tau: float | None = None, sure: float | None = None, max_gap: float = 1.0,
                 min_iou: float = 0.3, liveness: Callable[[], Any] | None = None) -> None:
        self.liveness = liveness  # makes a ``door.LiveCheck`` for each track, fed that track's faces
        self.tau = tau
        self.sure = tau if sure is None or tau is None else min(sure, tau)
        self.max_gap = max_gap
        self.min_iou = min_iou
        self.live: list[Track] = []
        self._next = 1
        self._last_time = -math.inf  # of the last analysed frame

    def cost(self, track: Track, face: Face, decision: Decision, time: float) -> float | None:
        """What joining ``face`` to ``track`` costs (lower is likelier), or None when it cannot be the same face."""
        box = face.detection.box
        size = _size(track.box)
        if size <= 0 or not 1 / MAX_SCALE <= _size(box) / size <= MAX_SCALE:
            return None
        predicted = track.predicted(time)
        reach = size * (REACH_MIN + REACH_PER_SECOND * max(time - track.last_seen, 0.0))
        (px, py), (cx, cy) = _centre(predicted), _centre(box)
        motion = math.hypot(cx - px, cy - py) / reach
        if motion > 1:
            return None
        overlap = max(iou(predicted, box), iou(track.box, box))
        comparable = (self.tau is not None and face.embedding is not None and not decision.too_small
                      and not decision.too_poor)
        d = track.distance(face.embedding) if comparable else None
        if d is None:
            return 1 - overlap + motion if overlap >= self.min_iou else None
        if d <= self.sure or (d <= self.tau and overlap >= self.min_iou):  # type: ignore[operator]
            return d / self.tau + motion  # type: ignore[operator]
        return None

    def update(self, time: float, faces: Sequence[Face], decisions: Sequence[Decision],
               image: np.ndarray | None = None) -> list[Event]:
        """Feed one analysed frame (its faces and their decisions; its RGB ``image`` for liveness); returns what
        changed, in time order: a name, or with liveness whether the face is live."""
        gone = [t for t in self.live if time - t.last_seen > self.max_gap and t.last_seen < self._last_time]
        events = self._leave(gone, time)
        self._last_time = time
        pairs = sorted((c, i, j) for i, t in enumerate(self.live) for j, (f, d) in enumerate(zip(faces, decisions))
                       if (c := self.cost(t, f, d, time)) is not None)
        matched: dict[int, Track] = {}
        taken: set[int] = set()
        for _, i, j in pairs:
            if i not in taken and j not in matched:
                taken.add(i)
                matched[j] = self.live[i]
        for j, (face, decision) in enumerate(zip(faces, decisions)):
            track = matched.get(j)
            if track is None:
                track = Track(self._next, time, time, face.detection.box,
                              check=self.liveness() if self.liveness is not None else None)
                self._next += 1
                self.live.append(track)
                track.add(face, decision, time)
                self._check(track, face, image, time)
                track.reported = track.name
                events.append(Event("appear", track, time))
                continue
            track.add(face, decision, time)
            was = track.live
            self._check(track, face, image, time)
            if track.name != track.reported or track.live != was:
                track.reported = track.name
                events.append(Event("update", track, time))
        return events

    @staticmethod
    def _check(track: Track, face: Face, image: np.ndarray | None, time: float) -> None:
        if track.check is not None and image is not None:
            track.check.observe(time, image, face.detection)
            track.liveness = track.check.verdict(time)

    def finish(self, time: float) -> list[Event]:
        """The end of the video at ``time`` (the last frame read): every live track leaves."""
        return self._leave(list(self.live), time)

    def _leave(self, tracks: list[Track], now: float) -> list[Event]:
        """``tracks`` leave: each at last seen + gap, not before the last analysed frame, nor after ``now``."""
        gone = {id(t) for t in tracks}
        self.live = [t for t in self.live if id(t) not in gone]
        events = [Event("leave", t, min(max(t.last_seen + self.max_gap, self._last_time), max(now, t.last_seen)))
                  for t in tracks]
        return sorted(events, key=lambda e: (e.time, e.track.id))
