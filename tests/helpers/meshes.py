"""The largest face of a sequence of frames, followed by the face mesh and collected for the liveness checks: what
the tests and ``bench/liveness.py`` feed them (a door camera's loop does the same, frame by frame)."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from facecli.liveness.challenge import Challenge
from facecli.liveness.verdict import LivenessTrack

#: a mesh whose face presence falls below this is lost; the face is looked for again by the detector
PRESENCE = 0.5


def follow(frames: Iterable[np.ndarray], fps: float, mesh, detector, challenge: Challenge | None = None
           ) -> LivenessTrack:
    """Follow the largest face through ``frames`` (BGR, ``fps`` per second, the first at time 0): detected once,
    then followed from its previous mesh, detected again when lost; frames without it are left out. A
    ``challenge`` is taken as prompted at time 0."""
    track = LivenessTrack(challenge, 0.0 if challenge else None)
    previous = None
    for i, frame in enumerate(frames):
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        detection = None
        if previous is None:
            found = detector.detect(rgb)
            if not found:
                continue
            detection = found[0]
        current = mesh.landmarks(rgb, detection, previous)
        if current.presence < PRESENCE:
            previous = None
            continue
        previous = current
        track.add(i / fps, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), current.points)
    return track


def read_video(path: str) -> tuple[list[np.ndarray], float]:
    """Every frame of a video file (BGR) and its frame rate."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return frames, fps
