"""The watch loop: every analysed frame of a video identified and its faces followed as tracks (``Engine.watch``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import cv2

from facecli.gallery import identification
from facecli.video import Frame, StreamLost

if TYPE_CHECKING:
    from facecli.gallery.store import Gallery
    from facecli.pipeline import Pipeline
    from facecli.tracking import Tracker
    from facecli.values import Threshold
    from facecli.video import Video


def watch_frames(pipeline: Pipeline, gallery: Gallery, video: Video, threshold: Threshold, tracker: Tracker,
                 step: int, min_face: float, min_quality: float,
                 stop: threading.Event | None = None) -> Iterator[Frame]:
    """One ``Frame`` per analysed frame until ``video`` ends or ``stop`` is set, then the final one (every track
    leaves); ``video`` is closed at the end, and a stream lost for good raises ``StreamLost`` after that frame."""
    lost: StreamLost | None = None
    try:
        for index, now, bgr in video.frames(step, stop):
            image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # converted once: analysed, and drawn on by callers
            result = pipeline.one(image, rgb=True, digest=False)
            if result.error:
                raise result.error
            found = identification.identify(gallery, result.faces, threshold, min_face=min_face,
                                            min_quality=min_quality)
            yield Frame(index, now, image, result.faces, found, tracker.update(now, result.faces, found, image))
    except StreamLost as exc:
        lost = exc
    finally:
        video.close()
    end = video.time()
    yield Frame(max(video.index, 0), end, None, [], [], tracker.finish(end))
    if lost is not None:
        raise lost
