"""Video files, cameras and network streams, read frame by frame for ``Engine.watch``, which identifies the
faces of each frame and follows them as tracks (``facecli.tracking``).

Files and stream URLs are read by OpenCV's FFmpeg backend, whose own messages
are silenced (``OPENCV_FFMPEG_LOGLEVEL``, unless already set): facecli's one
line says what failed. A stream URL that drops is reopened a bounded number
of times, waiting longer each time; a file served over HTTP resumes at the
frame after the last one read, a live stream wherever it is now. A password
in a URL is never printed (``redact``).
"""

from __future__ import annotations

import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from facecli.calibration import tau_for
from facecli.errors import BadValue, InputError
from facecli.imageio import image_format
from facecli.models import pipeline_spec

if TYPE_CHECKING:
    import numpy as np

    from facecli.tracking import Event
    from facecli.values import Decision, Face

#: Reconnection attempts after a stream drops, and the first wait (doubled each time, at most ``MAX_DELAY``).
ATTEMPTS = 5
DELAY = 1.0
MAX_DELAY = 30.0
#: Share of pairs of photos of different people within the tau that joins a face to a track by embedding alone.
SAME_PERSON_FAR = 1e-4
#: How long opening a stream, or waiting for its next packet, may take before it counts as dropped.
STREAM_TIMEOUT_MS = 10_000

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: The streams a URL may name (docs/watch.md): FFmpeg's other protocols (file://, tcp://, unix://, concat: …)
#: would read local files or sockets in the name of a "camera".
URL_SCHEMES = ("rtsp", "rtsps", "http", "https")
_SECRET_QUERY = re.compile(r"(^|[&;])([^=&;]*(?:pass|pwd|token|secret|key|auth|sig)[^=&;]*)=([^&;]*)", re.I)


def is_url(source: str | int) -> bool:
    return isinstance(source, str) and bool(_URL.match(source))


def redact(url: str) -> str:
    """``url`` fit to print: the password of its user part and secret-looking query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not parseable as a URL: hide everything between the scheme and the host
        return re.sub(r"//[^/]*@", "//***@", url)
    netloc = parts.netloc
    user, at, host = netloc.rpartition("@")
    if at and ":" in user:
        netloc = f"{user.split(':', 1)[0]}:***@{host}"
    query = _SECRET_QUERY.sub(r"\1\2=***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class StreamLost(InputError):
    """A stream that dropped and could not be reopened within the allowed attempts."""


class Video:
    """An opened video file, camera or stream URL, read frame by frame (``frames``).

    Opening checks that it is a video and gives at least one frame, or raises
    an ``InputError`` with one line. ``live`` (a camera, or a stream without
    a known length) times frames by the clock; otherwise a frame's time is
    its index over the frame rate.
    """

    def __init__(self, source: str | int, attempts: int = ATTEMPTS, delay: float = DELAY,
                 log: Callable[[str], None] = lambda _m: None) -> None:
        self.source = source
        self.url = is_url(source)
        self.label = f"camera {source}" if isinstance(source, int) else redact(source) if self.url else source
        self.attempts = attempts
        self.delay = delay
        self.log = log
        self.index = -1  # of the last frame read
        self._reader: threading.Thread | None = None
        if self.url and urlsplit(str(source)).scheme.lower() not in URL_SCHEMES:
            raise InputError(self.label, f"not a stream facecli opens: the URL must start with "
                                         f"{', '.join(s + '://' for s in URL_SCHEMES)}")
        if not self.url and isinstance(source, str):
            _check_file(source)
        self._capture = self._open()
        if self._capture is None:
            raise InputError(self.label, "cannot open the stream (unreachable, refused, or not a video)" if self.url
                             else "cannot open it (no such camera, or it is in use)" if isinstance(source, int)
                             else "cannot open it as a video (not a video, or a format this OpenCV cannot read)")
        # OpenCV: loaded only where pixels are decoded or drawn
        import cv2

        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else 30.0
        count = self._capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.length = int(count) if count and 0 < count < 2**40 else None  # frames, when the container says
        self.live = isinstance(source, int) or (self.url and self.length is None)
        if not self._capture.grab():
            self.close()
            hint = (" (a file served over HTTP may need a server that answers range requests)"
                    if self.url and not self.live else "")
            raise InputError(self.label, f"no frame could be read from it{hint}")
        self._pending = True  # the frame just grabbed is the first one ``frames`` yields
        self._started = time.monotonic()

    def _open(self) -> Any:
        """A cv2.VideoCapture that is open, or None."""
        # OpenCV: loaded only where pixels are decoded or drawn
        import cv2

        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET: read when FFmpeg is first used
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our own error says what failed
        if isinstance(self.source, int):
            capture = cv2.VideoCapture(self.source)
        else:
            # FFmpeg only: OpenCV's other file backends print their own complaints about what is not a video
            backend = cv2.CAP_FFMPEG if cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG) else cv2.CAP_ANY
            params = ([cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                       STREAM_TIMEOUT_MS] if self.url else [])
            capture = cv2.VideoCapture(self.source, backend, params)
        if not capture.isOpened():
            capture.release()
            return None
        return capture

    def time(self) -> float:
        """Seconds from the start: of the last frame read (a file), or on the clock (live)."""
        return time.monotonic() - self._started if self.live else max(self.index, 0) / self.fps

    def frames(self, step: int = 1, stop: threading.Event | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
        """Every ``step``-th frame as (index, seconds, BGR image), until the end of the video or ``stop``.

        A stream URL that stops giving frames before its end (a live stream
        has none) is reopened; after ``attempts`` failed attempts in a row it
        raises ``StreamLost``. A live source is read in real time by a thread
        of its own, which keeps only the newest due frame: when analysing a
        frame takes longer than the stream takes to bring the next due one,
        frames are skipped rather than queued, so events never fall behind.
        """
        stop = stop or threading.Event()
        if not self.live:
            yield from self._read(step, stop)
            return
        newest, halt = _Newest(), threading.Event()

        def read() -> None:
            try:
                for item in self._read(step, halt):
                    newest.put(item)
                newest.finish()
            except BaseException as exc:  # StreamLost (or a bug): raised again in the consumer's thread
                newest.finish(exc)
            finally:
                self._capture.release()

        self._reader = threading.Thread(target=read, name="facecli-video", daemon=True)
        self._reader.start()
        try:
            while not stop.is_set():
                item = newest.take(0.1)
                if item is _END:
                    return
                if item is not None:
                    yield item
        finally:
            halt.set()
            self._reader.join(STREAM_TIMEOUT_MS / 1000 + 1)  # a grab waits at most the stream timeout

    def _read(self, step: int, stop: threading.Event) -> Iterator[tuple[int, float, np.ndarray]]:
        failures = 0
        while not stop.is_set():
            ok = self._pending or self._capture.grab()
            self._pending = False
            if not ok:
                if not self._resumable():
                    return
                failures += 1
                if failures > self.attempts:
                    raise StreamLost(self.label, f"stream lost: {self.attempts} reconnection attempts failed"
                                     if self.attempts else "stream lost (reconnection is off)")
                if not self._reconnect(failures, stop):
                    return
                continue
            if failures:
                self.log(f"{self.label}: reconnected at frame {self.index + 1}")
                failures = 0
            self.index += 1
            if self.index % step:
                continue
            ok, bgr = self._capture.retrieve()
            if ok:
                yield self.index, self.time(), bgr

    def _resumable(self) -> bool:
        """Whether a failed read is a dropped stream to reopen, rather than the end."""
        return self.url and (self.live or self.index + 1 < self.length)  # type: ignore[operator]

    def _reconnect(self, attempt: int, stop: threading.Event) -> bool:
        """Wait, then reopen the stream (at the next frame, for a file); False if stopped while waiting."""
        # OpenCV: loaded only where pixels are decoded or drawn
        import cv2

        wait = min(self.delay * 2 ** (attempt - 1), MAX_DELAY)
        self.log(f"{self.label}: stream dropped after frame {self.index}; reconnecting in {wait:g} s "
                 f"(attempt {attempt} of {self.attempts})")
        self._capture.release()
        if stop.wait(wait):
            return False
        capture = self._open()
        if capture is not None:
            self._capture = capture
            if not self.live and not capture.set(cv2.CAP_PROP_POS_FRAMES, self.index + 1):
                for _ in range(self.index + 1):  # cannot seek: read up to where it dropped
                    if not capture.grab():
                        break
        else:  # nothing to read: the next grab fails and counts as the next attempt
            self._capture = _Closed()
        return True

    def close(self) -> None:
        if self._reader is None or not self._reader.is_alive():  # else the reader releases it when its grab returns
            self._capture.release()


_END = object()


class _Newest:
    """The newest frame a reader thread offered that the consumer has not taken yet (older ones are dropped)."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._item: object = None
        self._done = False
        self._error: BaseException | None = None

    def put(self, item: object) -> None:
        with self._ready:
            self._item = item
            self._ready.notify()

    def finish(self, error: BaseException | None = None) -> None:
        with self._ready:
            self._done, self._error = True, error
            self._ready.notify()

    def take(self, timeout: float) -> Any:
        """The newest frame; None if none came within ``timeout``; ``_END`` after the last (or the reader's error)."""
        with self._ready:
            if self._item is None and not self._done:
                self._ready.wait(timeout)
            item, self._item = self._item, None
            if item is None and self._done:
                if self._error is not None:
                    raise self._error
                return _END
            return item


class _Closed:
    """A capture that gives no frame (a stream that could not be reopened)."""

    def grab(self) -> bool:
        return False

    def release(self) -> None:
        pass


def _check_file(path: str) -> None:
    """Refuse, with one line, a path that cannot be a video: missing, a folder, empty, or an image."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(path, "no such video file") from None
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(path, "is a directory, not a video file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(path, "not a regular file")
    if st.st_size == 0:
        raise InputError(path, "empty file, not a video")
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None
    fmt = image_format(head)
    if fmt is not None:
        raise InputError(path, f"is a {fmt.upper()} image, not a video (identify reads photos)")


def same_person_tau(model: str) -> float | None:
    """The distance within which a face joins a track wherever it moved (within reach): ``SAME_PERSON_FAR``.

    The 1:1 tau is too loose for that: photos of different people fall within
    it about 1 in 300 times (fusion, LFW), and in the crossing test of
    tests/cli/test_watch.py frames of Obama and Biden come as close as 1.30
    (fusion's 1:1 tau: 1.36; this tau: 1.17; the same person's frames: at
    most 0.41). None: the model has no impostor measurements (its 1:1 tau is
    then used, with box overlap).
    """
    try:
        return tau_for(pipeline_spec(model), 1, SAME_PERSON_FAR)
    except BadValue:
        return None


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

    def __repr__(self) -> str:  # not the pixels
        return (f"Frame(index={self.index}, time={self.time:.2f}, faces=<{len(self.faces)}>, "
                f"names={[d.name for d in self.decisions]}, events={self.events})")


def open_video(source: str | int, attempts: int = ATTEMPTS, delay: float = DELAY,
               log: Callable[[str], None] = lambda _m: None) -> Video:
    """A video file, camera index or stream URL, opened and checked (see ``Video``)."""
    return Video(source, attempts, delay, log)
