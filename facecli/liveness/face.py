"""One face followed for liveness in a video loop (``door.watch_claim``, ``Engine.watch``): on each frame it is
seen, its face mesh (from the detector's box when it is new or was lost, else tracked from the previous frame's
mesh, as MediaPipe does) goes to a ``LivenessTrack``, which judges it (``verdict.judge``).

A challenge, when asked for, is drawn when the face first appears and shown at once (``prompt``): the person at
the door reads it then, and the time it was shown is the start of its deadline.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from facecli.facemesh import FaceMesh, Mesh
from facecli.liveness.challenge import Challenge
from facecli.liveness.verdict import Liveness, LivenessTrack
from facecli.values import Detection

#: A mesh whose face presence falls below this has lost the face: the next frame starts from the detector again.
PRESENCE = 0.5


class LiveFace:
    """A ``door.LiveCheck``: one face's frames, meshed and judged."""

    def __init__(self, mesh: FaceMesh, challenge: Challenge | None = None,
                 prompt: Callable[[str], None] = lambda _m: None) -> None:
        self.mesh, self.challenge, self.prompt = mesh, challenge, prompt
        self.track: LivenessTrack | None = None
        self.previous: Mesh | None = None

    def observe(self, time: float, rgb: np.ndarray, detection: Detection) -> None:
        """The face in frame ``rgb`` at ``time`` seconds, where the detector found it at ``detection``."""
        if self.track is None:
            if self.challenge is not None:
                self.prompt(f"challenge: {self.challenge.text}")
            self.track = LivenessTrack(self.challenge, time if self.challenge is not None else None)
        current = self.mesh.landmarks(rgb, detection if self.previous is None else None, self.previous)
        if current.presence < PRESENCE:
            self.previous = None
            return
        self.previous = current
        self.track.add(time, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), current.points)

    def verdict(self, time: float) -> Liveness | None:
        """The verdict so far (``live`` None while the window is being watched); None before any frame."""
        return None if self.track is None else self.track.judge()


def live_faces(challenge: bool = False, prompt: Callable[[str], None] = lambda _m: None,
               device: str = "auto") -> Callable[[], LiveFace]:
    """What makes a ``LiveFace`` for each new face: one face-mesh model shared by all, and with ``challenge`` a
    new random challenge for each face."""
    mesh = FaceMesh(device)
    return lambda: LiveFace(mesh, Challenge.random() if challenge else None, prompt)
