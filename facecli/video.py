"""Faces in a video or a camera stream: identified frame by frame and followed as tracks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facecli import decisions
from facecli.errors import InputError
from facecli.tracking import Event, Tracker

if TYPE_CHECKING:
    from facecli.engine import Engine
    from facecli.gallery import Gallery
    from facecli.types import Decision, Face, Threshold


@dataclass(frozen=True)
class Frame:
    """One analysed frame and what changed in the tracks.

    The stream ends with one more ``Frame`` whose ``image`` is None: it carries
    the ``leave`` events of the tracks still open when the video ended.
    """

    index: int
    time: float  # seconds from the start of the video (or of the capture)
    image: np.ndarray | None  # RGB; None for the end of the stream
    faces: list[Face]
    decisions: list[Decision]
    events: list[Event]


def open_video(source: str | int) -> tuple[Any, float]:
    """An opened cv2.VideoCapture and its frame rate, or an InputError naming the source."""
    import cv2

    if isinstance(source, str) and not Path(source).is_file():
        raise InputError(source, "no such video file")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our own error says what failed
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise InputError(f"camera {source}" if isinstance(source, int) else source,
                         "cannot open it as a video (unsupported format, or no such camera)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    return capture, fps if fps and 0 < fps < 1000 else 30.0


def watch(engine: Engine, gallery: Gallery, capture: Any, video_fps: float, threshold: Threshold, step: int,
          max_gap: float = 1.0, live: bool = False, min_face: float = decisions.MIN_FACE) -> Iterator[Frame]:
    """Identify the faces of every ``step``-th frame and follow them; stops at the end of the video.

    ``live`` (a camera) times frames by the wall clock instead of the frame count.
    """
    import cv2

    tracker = Tracker(max_gap=max_gap)
    start = time.monotonic()
    index = -1
    try:
        while capture.grab():
            index += 1
            if index % step:
                continue
            ok, bgr = capture.retrieve()
            if not ok:
                break
            now = time.monotonic() - start if live else index / video_fps
            image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            faces = engine.pipeline.frame(image)
            found = gallery.identify(faces, threshold, min_face=min_face)
            events = tracker.update(now, [(f.detection, d) for f, d in zip(faces, found)])
            yield Frame(index, now, image, faces, found, events)
    finally:
        capture.release()
    end = time.monotonic() - start if live else index / video_fps
    yield Frame(index, end, None, [], [], tracker.finish())
