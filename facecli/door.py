"""At the door: is the face in front of the camera the claimed person (and, with liveness, really there)?

``verify --claim NAME --camera N | --video FILE`` watches the stream until the
face at the door (the largest one) is confirmed as the claimed person, or until
the time runs out. A face is confirmed when ``CONFIRM`` analysed frames in a
row decide "same" for it (``identification.claim_decisions``: a face too small
or too poor is never "same") and, with liveness, when the liveness check of
that face says live. A face that jumps elsewhere, or is unseen for ``GAP``
seconds, is a new face: its streak and its liveness evidence start again, so
evidence of one person never counts for another.

Rows are decisions: one each time the answer on the door face changes, and
the final one (``confirmed``, ``timeout``, or ``ended`` when a video file ends
first).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from facecli.gallery import identification
from facecli.values import iou

if TYPE_CHECKING:
    import numpy as np

    from facecli.gallery.store import Gallery
    from facecli.pipeline import Pipeline
    from facecli.values import Detection, Threshold, Verification
    from facecli.video import Video

#: Analysed frames in a row that must say "same" before the door opens: one frame is one guess.
CONFIRM = 3
#: Box overlap (IoU) between analysed frames under which the largest face is another face, not the same one moving.
MOVED_IOU = 0.3
#: Seconds a door face may be unseen and still be the same face (a blink of the detector, not a new person).
GAP = 1.0


class LiveCheck(Protocol):
    """What the door asks of a liveness check: follow one face over frames, and say whether it is live."""

    def observe(self, time: float, rgb: np.ndarray, detection: Detection) -> None: ...

    def verdict(self, time: float) -> Any: ...  # .live: True, False or None (not yet known); .as_dict()


@dataclass(frozen=True)
class DoorEvent:
    """One decision row: ``event`` is "decision" (the answer changed), "confirmed", "timeout" or "ended"."""

    event: str
    time: float
    frame: int
    verification: Verification
    streak: int  # analysed frames in a row that said "same" for this face
    liveness: Any = None  # the liveness verdict (with its evidence), when checked

    @property
    def live(self) -> bool | None:
        return None if self.liveness is None else self.liveness.live

    @property
    def confirmed(self) -> bool:
        return self.event == "confirmed"

    def __repr__(self) -> str:
        return (f"DoorEvent(event={self.event!r}, time={self.time:.2f}, decision={self.verification.decision!r}, "
                f"streak={self.streak}, live={self.live})")


def _same_face(a: Detection | None, b: Detection, seen: float, now: float) -> bool:
    return a is not None and now - seen <= GAP and iou(a.box, b.box) >= MOVED_IOU


def watch_claim(pipeline: Pipeline, gallery: Gallery, video: Video, name: str, threshold: Threshold,
                timeout: float, step: int = 1, embed_every: int = 1, templates: str = "mean",
                min_face: float = 20.0, min_quality: float = 0.0, liveness: Callable[[], LiveCheck] | None = None,
                stop: threading.Event | None = None) -> Iterator[DoorEvent]:
    """Decide the claim ``name`` on the door face of every ``step``-th frame until it is confirmed, ``timeout``
    seconds of video pass, the video ends or ``stop`` is set; yields each change of the answer, then the final
    row. Faces are detected on every analysed frame (liveness follows them there) and embedded on every
    ``embed_every``-th of them. ``liveness`` makes a ``LiveCheck`` for each new door face."""
    # OpenCV: loaded only where pixels are decoded or drawn
    import cv2

    face: Detection | None = None
    seen = start = 0.0
    streak, check, last = 0, None, None
    shown: tuple | None = None
    verdict = None
    for analysed, (index, now, bgr) in enumerate(video.frames(step, stop)):
        if analysed == 0:
            start = now
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        result = pipeline.analyse(rgb, rgb=True, digest=False)
        if result.error:
            raise result.error
        door = result.faces[0] if result.faces else None
        if door is not None and not _same_face(face, door.detection, seen, now):
            streak, check, last = 0, liveness() if liveness else None, None  # a new face: evidence starts again
        if door is not None:
            face, seen = door.detection, now
            if check is not None:
                check.observe(now, rgb, door.detection)
        if door is None or analysed % embed_every == 0 or last is None or last.probe_face is None:
            faces = len(result.faces)
            result.faces = result.faces[:1]  # only the door face is embedded and decided
            pipeline.embed_result(result)
            (last,) = identification.claim_decisions(gallery, result, name, threshold, False, templates, min_face,
                                                     min_quality)
            last = replace(last, faces=faces)
            streak = streak + 1 if last.same else 0
        verdict = check.verdict(now) if check is not None else None  # a frame without the face keeps it
        event = DoorEvent("decision", now - start, index, last, streak, verdict)
        if streak >= CONFIRM and (liveness is None or event.live is True):
            yield DoorEvent("confirmed", now - start, index, last, streak, verdict)
            return
        state = (last.decision, last.unjudged, event.live)
        if state != shown:
            shown = state
            yield event
        if now - start >= timeout:
            yield DoorEvent("timeout", now - start, index, last, streak, verdict)
            return
    if last is None:  # no frame analysed: the stream ended (or was stopped) before one came
        return
    yield DoorEvent("ended", video.time() - start, max(video.index, 0), last, streak, verdict)

