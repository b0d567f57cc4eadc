"""Follow faces across video frames, so a person is reported once per appearance.

A track is a face seen in consecutive sampled frames: each new detection joins
the live track whose last box overlaps it most (intersection over union at
least ``min_iou``), or starts a new one. A track not seen for ``max_gap``
seconds has left. Its name is the one recognised most often in its frames
(ties: the nearest), so one blurred frame does not rename a person. Frames in
which the face was too small to identify keep the track alive but do not vote.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from facecli.types import Decision, Detection, decision_label


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    id: int
    start: float
    last_seen: float
    box: tuple[float, ...]
    votes: dict[str | None, int] = field(default_factory=dict)
    best: dict[str | None, float] = field(default_factory=dict)  # nearest distance per name
    reported: str | None = None

    @property
    def name(self) -> str | None:
        """The most frequent decision; a recognised name wins a tie with "not recognized"."""
        if not self.votes:
            return None
        return max(self.votes, key=lambda n: (self.votes[n], n is not None, -self.best[n]))

    @property
    def too_small(self) -> bool:
        """Seen only too small to identify so far."""
        return not self.votes

    @property
    def label(self) -> str:
        return decision_label(self.name, self.too_small)

    def add(self, det: Detection, decision: Decision, time: float) -> None:
        self.box, self.last_seen = det.box, time
        if decision.too_small:
            return
        self.votes[decision.name] = self.votes.get(decision.name, 0) + 1
        d = decision.distance if decision.distance is not None else 4.0
        self.best[decision.name] = min(self.best.get(decision.name, 4.0), d)


@dataclass
class Event:
    kind: str  # "appear", "update" (its name changed) or "leave"
    track: Track
    time: float


class Tracker:
    def __init__(self, min_iou: float = 0.3, max_gap: float = 1.0) -> None:
        self.min_iou = min_iou
        self.max_gap = max_gap
        self.live: list[Track] = []
        self._next = 1

    def update(self, time: float, faces: list[tuple[Detection, Decision]]) -> list[Event]:
        """Feed one sampled frame; returns what changed."""
        events = [Event("leave", t, t.last_seen) for t in self.live if time - t.last_seen > self.max_gap]
        self.live = [t for t in self.live if time - t.last_seen <= self.max_gap]
        free = list(self.live)
        for det, decision in faces:
            match = max(free, key=lambda t: iou(t.box, det.box), default=None)
            if match is None or iou(match.box, det.box) < self.min_iou:
                match = Track(self._next, time, time, det.box)
                self._next += 1
                self.live.append(match)
                match.add(det, decision, time)
                match.reported = match.name
                events.append(Event("appear", match, time))
                continue
            free.remove(match)
            match.add(det, decision, time)
            if match.name != match.reported:
                match.reported = match.name
                events.append(Event("update", match, time))
        return events

    def finish(self) -> list[Event]:
        """The end of the video: every live track leaves."""
        events = [Event("leave", t, t.last_seen) for t in self.live]
        self.live = []
        return events
