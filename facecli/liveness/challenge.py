"""A random instruction the person at the camera must follow, checked on the mesh, so that a recording made
beforehand does not pass: it cannot know which instruction comes, nor when.

A challenge is ``DEFAULT_STEPS`` different steps drawn from ``STEPS`` (by ``secrets.SystemRandom`` unless a
seeded ``random.Random`` is given), done in order, each within ``STEP_SECONDS`` of the previous one (the first,
of the prompt):

- ``turn-left`` / ``turn-right``: the head's yaw (``series.yaw``, the person's own left and right, as an
  unmirrored camera sees them) moves at least ``TURN`` degrees that way from where it was when the step began
  (the median of the last ``REFERENCE`` seconds before). The talking clip of the tests never turns more than
  9 degrees in its 10 s: a replay of it never turns 15;
- ``blink-twice``: two blinks (``blinks.find_blinks``, against the whole track's baseline) both starting after
  the step began, the second starting at most ``DOUBLE_BLINK`` seconds after the first ended: a spontaneous
  pair that close is rare, a deliberate one is that quick.

Chaining two steps matters: a lively talker's replay can turn 15 degrees by chance (bench/liveness.py measures
how often a replay passes each step and each chain from random start times).
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass

import numpy as np

from facecli.liveness.blinks import baseline, find_blinks, jitter
from facecli.liveness.series import MeshSeries, yaw

STEPS = ("turn-left", "turn-right", "blink-twice")
TEXT = {"turn-left": "turn your head to your left", "turn-right": "turn your head to your right",
        "blink-twice": "blink twice"}
#: steps in a default challenge
DEFAULT_STEPS = 2
#: degrees of yaw a turn must reach from where the head was
TURN = 15.0
#: seconds each step may take
STEP_SECONDS = 5.0
#: seconds before a step's start whose median yaw is where the head was
REFERENCE = 0.5
#: seconds from the end of a blink to the start of the next, at most, for them to be a double blink
DOUBLE_BLINK = 1.2

PASSED, FAILED, PENDING = "passed", "failed", "pending"


@dataclass(frozen=True)
class ChallengeState:
    """Where a challenge stands: ``state`` passed, failed or pending, and when each step done so far was done
    (seconds, the series' clock)."""

    steps: tuple[str, ...]
    state: str
    done: tuple[float, ...]

    def as_dict(self) -> dict[str, object]:
        return {"steps": list(self.steps), "state": self.state, "done": [round(t, 2) for t in self.done]}


@dataclass(frozen=True)
class Challenge:
    """The steps to do, in order."""

    steps: tuple[str, ...]

    def __post_init__(self) -> None:
        unknown = [s for s in self.steps if s not in STEPS]
        if unknown or not self.steps:
            raise ValueError(f"challenge steps must be some of {', '.join(STEPS)}: {self.steps}")

    @classmethod
    def random(cls, count: int = DEFAULT_STEPS, rng: random.Random | None = None) -> Challenge:
        """``count`` different steps in a random order, drawn by ``rng`` (the system's secure source unless given)."""
        return cls(tuple((rng or secrets.SystemRandom()).sample(STEPS, count)))

    @property
    def text(self) -> str:
        """The instruction to show: "turn your head to your left, then blink twice"."""
        return ", then ".join(TEXT[s] for s in self.steps)

    @property
    def seconds(self) -> float:
        """The most time the challenge may take after its prompt."""
        return STEP_SECONDS * len(self.steps)

    def check(self, series: MeshSeries, issued: float) -> ChallengeState:
        """How the challenge stands on ``series`` (the face's whole track, frames before the prompt too), the
        prompt shown at time ``issued``: passed, failed (a step's time ran out) or pending (frames may come)."""
        base = baseline(series)
        steady = jitter(series, base)
        start, done = issued, []
        last = float(series.times[-1]) if len(series) else issued
        for step in self.steps:
            end = start + STEP_SECONDS
            at = (_turned(series, start, end, 1 if step == "turn-left" else -1) if step.startswith("turn")
                  else _blinked_twice(series, start, end, base, steady))
            if at is None:
                return ChallengeState(self.steps, FAILED if last >= end else PENDING, tuple(done))
            done.append(at)
            start = at
        return ChallengeState(self.steps, PASSED, tuple(done))


def _turned(series: MeshSeries, start: float, end: float, sign: int) -> float | None:
    """When the head's yaw first reached ``TURN`` degrees towards ``sign`` from where it was at ``start``."""
    before = series.between(start - REFERENCE, start)
    after = series.between(start, end)
    if not len(after):
        return None
    angles = yaw(after.points)
    ref = float(np.median(yaw(before.points))) if len(before) else float(angles[0])
    hit = np.flatnonzero(sign * (angles - ref) >= TURN)
    return float(after.times[hit[0]]) if len(hit) else None


def _blinked_twice(series: MeshSeries, start: float, end: float, base: float | None,
                   steady: float | None) -> float | None:
    """When the second of two quick successive blinks, both begun after ``start``, ended."""
    blinks = [b for b in find_blinks(series.between(start - 1.0, end), base, steady) if b.start >= start]
    for first, second in zip(blinks, blinks[1:]):
        if second.start - first.end <= DOUBLE_BLINK:
            return second.end
    return None
