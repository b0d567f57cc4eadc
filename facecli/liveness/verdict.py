"""The liveness verdict on one face track: ``live`` true, false or null, with the evidence behind it.

A door camera's loop (or a test) feeds every frame in which the face is followed to a ``LivenessTrack``:
``add(time, grey, points)``; ``judge()`` may be asked after any frame. The checks look at the first ``WINDOW``
seconds of the track (with a challenge, until its last step's time is up, if later):

- blinks (``blinks.py``): when the face blinked;
- depth (``depth.py``): whether it moved like a flat picture (None: too little motion to tell);
- the challenge (``challenge.py``), when one was given: passed, failed or pending.

What "live" needs is one rule, ``decisions.liveness``: not flat, a blink, and the challenge passed when there
is one. A verdict is reached as soon as the evidence allows (a blink, on a face that did not move like a
plane, is enough at once); ``live`` is null while the window is still being watched, and stays null when the
frames end first (``final``: a clip shorter than the window cannot show that no blink would have come).

Frames must come at 15 per second or more for blinks to be seen (bench/liveness.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facecli.decisions import liveness
from facecli.liveness.blinks import find_blinks
from facecli.liveness.challenge import Challenge, ChallengeState
from facecli.liveness.depth import Depth, FaceTracker, planarity
from facecli.liveness.series import MeshSeries

#: seconds of a face track the checks watch: the talking clip's first blink comes 5.6 s into it, and people at
#: rest blink every 2-10 s
WINDOW = 8.0


@dataclass(frozen=True)
class Liveness:
    """The verdict and its evidence: ``live``, ``reason``, the ``seconds`` and ``frames`` of the face watched,
    when it ``blinked`` (seconds from the track's start), its ``depth`` and its ``challenge`` state (None
    without one)."""

    live: bool | None
    reason: str
    seconds: float
    frames: int
    blinked: tuple[float, ...]
    depth: Depth
    challenge: ChallengeState | None

    def as_dict(self) -> dict[str, object]:
        """The verdict as JSON-ready values."""
        return {"live": self.live, "reason": self.reason, "seconds": round(self.seconds, 2), "frames": self.frames,
                "blinks": [round(t, 2) for t in self.blinked], "depth": self.depth.as_dict(),
                "challenge": None if self.challenge is None else self.challenge.as_dict()}


def judge(series: MeshSeries, tracker: FaceTracker, challenge: Challenge | None = None, issued: float | None = None,
          window: float = WINDOW, final: bool = False) -> Liveness:
    """The verdict on a face's ``series`` and ``tracker`` (fed the same frames); ``challenge`` was prompted at
    time ``issued`` (the series' clock; default: its first frame); ``final``: no more frames will come."""
    if not len(series):
        return Liveness(None, "no face", 0.0, 0, (), Depth(None, None, None, 0.0, 0), None)
    start = float(series.times[0])
    end = start + window
    if challenge is not None:
        issued = start if issued is None else issued
        end = max(end, issued + challenge.seconds)
    watched = series.between(start, end)
    blinks = find_blinks(watched)
    depth = planarity(tracker.segments, start, end)
    state = None if challenge is None else challenge.check(watched, issued if issued is not None else start)
    complete = float(series.times[-1]) >= end
    live, reason = liveness(bool(blinks), depth.flat, None if state is None else state.state, complete)
    if live is None and final:
        reason = f"the face was seen for {watched.seconds:.1f} s, less than the {end - start:g} s window"
    return Liveness(live, reason, watched.seconds, len(watched), tuple(b.start - start for b in blinks), depth, state)


class LivenessTrack:
    """One face's frames, collected for ``judge``: feed each frame in which the face was followed."""

    def __init__(self, challenge: Challenge | None = None, issued: float | None = None, window: float = WINDOW):
        self.challenge, self.issued, self.window = challenge, issued, window
        self.tracker = FaceTracker()
        self._times: list[float] = []
        self._points: list[np.ndarray] = []

    def add(self, time: float, grey: np.ndarray, points: np.ndarray) -> None:
        """A frame at ``time`` seconds: ``grey`` the whole frame (H x W uint8), ``points`` the face's mesh (478, 3)."""
        if self._times and time <= self._times[-1]:
            raise ValueError(f"frame times must increase: {time} after {self._times[-1]}")
        self._times.append(float(time))
        self._points.append(np.asarray(points, np.float64)[:, :3])
        self.tracker.add(time, grey, points)

    @property
    def series(self) -> MeshSeries:
        return MeshSeries(np.array(self._times), np.array(self._points).reshape(-1, 478, 3))

    def judge(self, final: bool = False) -> Liveness:
        return judge(self.series, self.tracker, self.challenge, self.issued, self.window, final)
