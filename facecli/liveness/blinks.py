"""Blinks in a face's mesh series: a quick close and reopen of both eyes, which a photo cannot do.

Each frame's openness (``series.eye_openness``: lid gap over eye width, over the face's aspect, so head roll and
nods cancel) is compared with the face's own open-eye baseline, the ``BASELINE_QUANTILE`` of the series' frames
(eyes differ between people, and a face narrows its eyes when it smiles). A blink is:

- both eyes closed: the more open of the two falls below ``CLOSED`` of the baseline (a wink, or one eye hidden by
  a hand or glare, is not a blink);
- quick: from the last open frame before (at least ``OPEN`` of the baseline) to the first open frame after, at
  most ``MAX_BLINK`` seconds: a spontaneous blink closes the eyes for 0.1-0.4 s. Looking down also brings the
  upper lids down, as far as a blink does (the talking clip of the tests does it for 1.6 s, lids as low as in
  its blink), but it lasts as long as the glance does; a glance down and back within half a second, the head
  still, would pass for a blink, and is what a photo cannot do either;
- seen: no gap between the frames of the event longer than ``MAX_GAP`` (a face lost for a moment, or frames
  analysed too seldom, cannot show that the eyes reopened quickly);
- not a nod: the head's pitch changes by less than ``MAX_PITCH`` degrees within the event (a fast nod moves the
  lids' apparent gap more than the aspect correction undoes);
- on a steady face: the median change of openness between successive frames is at most ``MAX_JITTER`` of the
  baseline. A face too small or blurred for its eyes to be measured (or a photo of someone squinting, whose
  narrow lid gap the mesh reads as anything from shut to wide open: 0.14-0.16 on a smiling LFW photo, against
  0.015-0.025 on the live clips) shows no blinks at all, rather than false ones.

MediaPipe's eyeBlinkLeft/Right blendshapes were measured too and are not used: on the talking clip they peak at
0.71 in its blink and stay above 0.5 through its 1.6 s look down, and on the squinting photo they are above 0.5
in 89 of 120 frames.

At 15 frames per second a blink spans 2-4 frames; below about 8 analysed frames per second blinks are missed
(bench/liveness.py measures it on the clip).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facecli.liveness.series import MeshSeries, eye_openness, pitch

#: below this fraction of the face's open-eye baseline, an eye is closed
CLOSED = 0.4
#: at or above this fraction it is open again
OPEN = 0.75
#: seconds from the last open frame before a closure to the first open frame after it
MAX_BLINK = 0.5
#: longest gap between analysed frames inside a blink, seconds
MAX_GAP = 0.25
#: largest head pitch change inside a blink, degrees
MAX_PITCH = 8.0
#: the quantile of a face's openness that is its open-eye baseline (blinks and glances are a small share of time)
BASELINE_QUANTILE = 0.75
#: frames needed before a baseline means anything
MIN_FRAMES = 5
#: largest median change of openness between successive frames (a fraction of the baseline) of a steady face
MAX_JITTER = 0.06


@dataclass(frozen=True)
class Blink:
    """One blink: ``start`` (last open frame before) and ``end`` (first open frame after), seconds; ``depth``: the
    lowest openness reached, as a fraction of the baseline."""

    start: float
    end: float
    depth: float


def openness_ratio(series: MeshSeries, baseline: float | None = None) -> np.ndarray:
    """(T,) the more open eye's openness per frame over the face's baseline (``baseline`` if given)."""
    both = eye_openness(series.points).max(axis=1)
    base = baseline if baseline is not None else float(np.quantile(both, BASELINE_QUANTILE))
    return both / max(base, 1e-9)


def baseline(series: MeshSeries) -> float | None:
    """The face's open-eye openness over ``series`` (None with fewer than ``MIN_FRAMES`` frames)."""
    if len(series) < MIN_FRAMES:
        return None
    return float(np.quantile(eye_openness(series.points).max(axis=1), BASELINE_QUANTILE))


def jitter(series: MeshSeries, base: float | None = None) -> float | None:
    """The median change of openness between successive frames, a fraction of the baseline (None: too few)."""
    base = base if base is not None else baseline(series)
    if base is None:
        return None
    return float(np.median(np.abs(np.diff(openness_ratio(series, base)))))


def find_blinks(series: MeshSeries, base: float | None = None, steady: float | None = None) -> list[Blink]:
    """The blinks in ``series``, in time order; ``base`` and ``steady`` (its jitter): the face's baseline and
    jitter measured over a longer series (a challenge's few seconds are judged against the whole track)."""
    base = base if base is not None else baseline(series)
    if base is None:
        return []
    steady = steady if steady is not None else jitter(series, base)
    if steady is None or steady > MAX_JITTER:
        return []
    ratio = openness_ratio(series, base)
    heads = pitch(series.points)
    times = series.times
    blinks: list[Blink] = []
    last_open: int | None = None
    i, n = 0, len(series)
    while i < n:
        if ratio[i] >= OPEN:
            last_open = i
            i += 1
            continue
        if ratio[i] >= CLOSED or last_open is None:
            i += 1
            continue
        # a closure: find the first open frame after it
        j = i
        while j < n and ratio[j] < OPEN:
            j += 1
        if j < n and _is_blink(times, heads, last_open, j):
            blinks.append(Blink(float(times[last_open]), float(times[j]), float(ratio[last_open:j + 1].min())))
        last_open = j if j < n else None
        i = j + 1
    return blinks


def _is_blink(times: np.ndarray, heads: np.ndarray, before: int, after: int) -> bool:
    """Whether the closure between open frames ``before`` and ``after`` was quick, seen, and not a nod."""
    span = times[before:after + 1]
    return (span[-1] - span[0] <= MAX_BLINK and float(np.diff(span).max()) <= MAX_GAP
            and float(np.ptp(heads[before:after + 1])) < MAX_PITCH)
