"""image -> faces -> embeddings, as a stream over many images (``run``), or for one image on the calling
thread (``one``: a camera loop's frame, with nothing to overlap it with).

Worker threads read, decode, detect and crop (OpenCV and onnxruntime release
the GIL, and each detector network runs single-threaded, so two images are
detected at once on two cores). On a GPU the main thread embeds the crops of
several images together in one large batch while the workers move on. On the
CPU each worker also embeds the faces of its own few images, with networks
that run on one thread each: the cores then work on different images, with
no thread pool spinning against the workers and no stage waiting for
another (measured in bench/RESULTS.md, issue 19). Results come out in input
order, one ``ImageResult`` per input, with the error instead of faces when an
input is bad, so a caller can report it and carry on. At most ``prefetch``
images are in flight, so a folder of 10 000 photos takes no more memory than
a folder of ten.

One image never stops the others: anything that goes wrong with it (an
unreadable file, an OpenCV or onnxruntime failure, running out of memory)
becomes that image's error, and an embedding batch that fails is retried
image by image so that only the culprit fails. An image that ran out of
memory is tried once more alone, when no other image is being handled: the
memory may have been held by the image beside it, and a photo that can be
handled alone is never lost to its neighbour.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING

import cv2
import numpy as np

from facecli.detectors import DET_SIZE, create_detector
from facecli.embedding import FaceEmbedder
from facecli.errors import BadValue, FaceCliError, InputError, ModelError, OutOfMemory
from facecli.imageio import cv_reason, decode, jpeg_shrink, read_bytes, read_header
from facecli.models import DEFAULT_MODEL
from facecli.quality import QualityModel, measure
from facecli.runtime import env_threads, runs_on_cpu
from facecli.sources import sha256_bytes
from facecli.timings import StageTimes
from facecli.values import Detection, Face, ImageResult

if TYPE_CHECKING:
    from facecli.heads import LoadedHead

#: Longest side detection ever works at, whatever ``det_size`` says (0 = full size included):
#: the detectors' networks take 40-65 bytes per pixel of their input (a 96 MP photo at full size
#: took 5-5.6 GB); at 2048 px (4.2 MP when square) any one image stays within 1 GB.
MAX_DET_SIZE = 2048


def failure(subject: str, stage: str, exc: BaseException) -> FaceCliError:
    """An unexpected exception while handling one image, as that image's one-line error; running out of memory
    (Python's, OpenCV's or onnxruntime's bad_alloc) is an ``OutOfMemory``, which the pipeline tries again alone."""
    if isinstance(exc, (MemoryError, OutOfMemory)):
        return OutOfMemory(subject, f"{stage} failed: out of memory")
    if type(exc).__module__.startswith("cv2"):
        reason = f"OpenCV: {cv_reason(exc)}"
        short = getattr(exc, "code", None) == -4  # cv2.Error.StsNoMem
    else:
        text = " ".join(str(exc).split())[:300]
        reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        short = "bad_alloc" in text
    return (OutOfMemory if short else InputError)(subject, f"{stage} failed: {reason}")


class _Turns:
    """Images are handled side by side, except one that ran out of memory: its second try waits until no
    other image is being handled and keeps new ones waiting while it runs."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0  # images being handled side by side
        self._waiting = 0  # second tries waiting to run alone: no new image starts meanwhile
        self._alone = False

    @contextmanager
    def together(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._alone and not self._waiting)
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        with self._changed:
            self._waiting += 1
            self._changed.wait_for(lambda: not self._alone and not self._running)
            self._waiting -= 1
            self._alone = True
        try:
            yield
        finally:
            with self._changed:
                self._alone = False
                self._changed.notify_all()


def _cores() -> int:
    """CPUs this process may run on, or fewer where ``FACECLI_THREADS`` says (a machine shared with other work)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return min(cores, env_threads() or cores)


class Pipeline:
    """Detector + embedder with their settings, created once per command.

    ``det_size`` is the longest side detection works at (0: the image's),
    never more than ``MAX_DET_SIZE``; JPEGs larger than twice that are
    decoded straight at 1/2, 1/4 or 1/8 scale. A face is cropped from the
    decoded image when it is at least as large there as the embedder's
    input, and otherwise from a full-resolution decode, so the crop is never
    blurrier than the photo allows.
    """

    #: On the CPU, the most images one worker analyses and embeds as one batch (chunks of 1, 2, then this):
    #: int8 FaceNet runs 25 % more faces per second at batch 4 than at batch 1, while a first small chunk per
    #: worker keeps two photos (verify) on two cores.
    CHUNK = 4

    def __init__(self, detector: str | None = None, model: str = DEFAULT_MODEL, device: str = "auto",
                 flip: bool | None = None, batch_size: int = 32, embed: bool = True, det_size: int = DET_SIZE,
                 workers: int | None = None, prefetch: int = 16, head: LoadedHead | None = None,
                 in_workers: bool | None = None, threads: int | None = None, rgb: bool = False) -> None:
        cores = _cores()
        #: the colour order of the arrays given to this pipeline, unless a call says: RGB, or BGR (OpenCV's)
        self.rgb = rgb
        #: whether the workers embed their own images (None: on the CPU) or this thread embeds large batches
        self.in_workers = embed and (runs_on_cpu(device) if in_workers is None else in_workers)
        self.workers = workers or (min(cores, 8) if self.in_workers else min(cores, 4))
        if threads is None:  # each network's intra-op threads: the cores shared among the embedding workers
            threads = max(1, cores // self.workers) if self.in_workers else 0
        self.embedder = FaceEmbedder(model, device, batch_size, flip, threads=threads)
        #: the projection head every face this pipeline embeds is matched through (``Face.head``); None: none
        self.head = head
        #: how each embedded face's quality is scored (``Face.quality``); None: the model has no quality model
        self.quality = QualityModel.of(self.embedder.spec)
        # without embedding (detect), only the first model's crop is made: what --crops writes
        self._croppers = self.embedder.parts if embed else self.embedder.parts[:1]
        if embed:
            self.embedder.preload()  # the big model loads while the first images are detected
        det_size = min(det_size, MAX_DET_SIZE) if det_size else MAX_DET_SIZE
        self.detector = create_detector(detector or self.embedder.spec.detector, device, det_size)
        if not self.detector.landmarks and any(p.alignment == "five-point" for p in self._croppers):
            raise BadValue("detector", self.detector.name,
                           f"gives no landmarks, and model {model} aligns faces by their five landmarks: "
                           "use yunet or mtcnn")
        self.embed = embed
        self.det_size = det_size
        self.batch_size = batch_size
        self.prefetch = max(prefetch, 2 * self.workers * (self.CHUNK if self.in_workers else 1))
        self._turns = _Turns()
        #: seconds per stage, for ``--verbose``
        self.times = StageTimes()

    @property
    def provider(self) -> str:
        """The execution provider of the heaviest model this pipeline runs."""
        return self.embedder.provider if self.embed else self.detector.provider

    def analyse(self, image: str | np.ndarray, rgb: bool | None = None, digest: bool = True) -> ImageResult:
        """Read, decode, detect and crop one image (no embedding); errors are returned, not raised.

        ``image`` is a path, or a decoded uint8 array in BGR order (OpenCV's), or in RGB order with ``rgb``
        (default: the pipeline's ``rgb``). ``digest=False`` skips the sha256 of an array's pixels, for a caller
        that has no use for it (a camera loop).
        """
        name = "<array>" if isinstance(image, np.ndarray) else image
        stage = "reading"
        try:
            if isinstance(image, np.ndarray):
                stage = "detecting"
                return self._analyse_array(image, name, self.rgb if rgb is None else rgb, digest)
            with self.times.stage("read"):
                data = read_bytes(image)
            stage = "decoding"
            with self.times.stage("decode"):
                shrink = jpeg_shrink(data, self.det_size)
                decoded = decode(data, image, shrink)
            stage = "detecting"
            return self._analyse_decoded(image, data, decoded, shrink)
        except FaceCliError as exc:
            return ImageResult(name, error=exc)
        except Exception as exc:  # noqa: BLE001 - whatever it is, it is this image's failure alone
            return ImageResult(name, error=failure(name, stage, exc))

    def one(self, image: str | np.ndarray | FaceCliError, rgb: bool | None = None, digest: bool = True
            ) -> ImageResult:
        """``run`` for one image, on this thread: no input thread, no worker pool, the same faces and embeddings
        (a one-image chunk is one embedding batch either way). What a camera loop calls for every frame."""
        if isinstance(image, FaceCliError):
            return _failed(image)
        result = self.analyse(image, rgb, digest)
        self._embed_results([result])
        return result

    def embed_result(self, result: ImageResult) -> None:
        """Embed the faces of an ``analyse`` result (what ``one`` does after it): a camera loop that detects every
        frame embeds only some of them."""
        self._embed_results([result])

    def _analyse_decoded(self, path: str, data: bytes, decoded: np.ndarray, shrink: int) -> ImageResult:
        sha = sha256_bytes(data)
        full = None
        faces = []
        with self.times.stage("detect"):
            found = self.detector.detect(decoded)
        for i, det in enumerate(found):
            if shrink > 1 and any(p.too_small(det, 1 / shrink) for p in self._croppers):
                # too small at this scale to fill the crop: take it from the full image
                if full is None:
                    full = decode(data, path)
                det = det.scaled(shrink)
                faces.append(Face(i, det, self._crops(full, det)))
            else:
                faces.append(Face(i, det.scaled(shrink), self._crops(decoded, det, 1 / shrink)))
        return ImageResult(path, faces, sha256=sha, size=_displayed_size(data, path, decoded, shrink))

    def _analyse_array(self, pixels: np.ndarray, name: str, rgb: bool, digest: bool) -> ImageResult:
        """An image given as pixels: the same detection and crops as a decoded file of those pixels (the same
        sha256 too, whichever colour order they are given in)."""
        check_pixels(pixels, name, rgb)
        pixels = np.ascontiguousarray(pixels)  # OpenCV refuses a view with negative strides (image[..., ::-1])
        channels = 1 if pixels.ndim == 2 else pixels.shape[2]
        to_rgb = {1: cv2.COLOR_GRAY2RGB, 3: None if rgb else cv2.COLOR_BGR2RGB,
                  4: cv2.COLOR_RGBA2RGB if rgb else cv2.COLOR_BGRA2RGB}[channels]
        image = pixels if to_rgb is None else cv2.cvtColor(pixels, to_rgb)
        sha = None
        if digest:
            bgr = pixels if not rgb or channels == 1 else cv2.cvtColor(
                pixels, cv2.COLOR_RGB2BGR if channels == 3 else cv2.COLOR_RGBA2BGRA)
            sha = sha256_bytes(f"{bgr.shape}".encode() + bgr.tobytes())
        return ImageResult(name, self._faces(image), sha256=sha, size=(image.shape[1], image.shape[0]))

    def _crops(self, image: np.ndarray, det: Detection, scale: float = 1.0) -> tuple[np.ndarray, ...]:
        with self.times.stage("crop"):
            return tuple(p.crop(image, det, scale) for p in self._croppers)

    def _faces(self, rgb: np.ndarray) -> list[Face]:
        """The faces detected in a decoded RGB image at its own size, largest first, with their crops."""
        with self.times.stage("detect"):
            found = self.detector.detect(rgb)
        return [Face(i, det, self._crops(rgb, det)) for i, det in enumerate(found)]

    def _embed(self, faces: list[Face]) -> None:
        """Fill in the embeddings of these faces, in one batched call, and their quality signals and score."""
        if self.embed and faces:
            with self.times.stage("embed"):
                emb, norms, mirror = self.embedder.embed_measured([f.crops for f in faces])
            k = self.embedder.measuring
            for i, (face, vector) in enumerate(zip(faces, emb)):
                face.embedding = vector
                face.head = self.head
                face.signals = measure(face.detection, face.crops[k], norms[i], None if mirror is None else mirror[i])
                face.quality = None if self.quality is None else self.quality.score(face.signals)

    def _embed_results(self, results: list[ImageResult]) -> None:
        """Embed the faces of several images in one batch; if it fails, image by image.

        An image whose own faces cannot be embedded gets the error and loses
        its faces; the others keep theirs. A model that cannot be loaded even
        then is no image's fault: its error stops the run.
        """
        try:
            self._embed([f for r in results for f in r.faces])
            return
        except Exception as exc:  # noqa: BLE001 - retried below to find the image it belongs to
            if len(results) == 1 and not isinstance(exc, ModelError):  # its image is known: no second try
                results[0].error, results[0].faces = failure(results[0].path, "embedding", exc), []
                return
        for r in results:
            try:
                self._embed(r.faces)
            except ModelError:
                raise
            except Exception as exc:  # noqa: BLE001
                r.error, r.faces = failure(r.path, "embedding", exc), []

    def run(self, images: Iterable[str | np.ndarray | FaceCliError], rgb: bool | None = None
            ) -> Iterator[ImageResult]:
        """Analyse and embed each image (a path or an array: BGR, or RGB with ``rgb``) in input order.

        An input given as a ``FaceCliError`` (one the caller already found bad,
        such as an empty folder) comes back in its place as that error's result.
        Memory stays bounded by ``prefetch`` and ``batch_size``.
        """
        for batch in self.batches(images, rgb):
            yield from batch

    def batches(self, images: Iterable[str | np.ndarray | FaceCliError], rgb: bool | None = None
                ) -> Iterator[list[ImageResult]]:
        """``run``'s results, in the groups that were embedded together.

        The input is read by a thread of its own, so a slow source never holds
        back what is ready: while paths keep coming, up to ``prefetch`` images
        are in flight and a group is embedded once it has ``batch_size`` faces;
        when nothing is in flight and the next input has not arrived (a pipe
        fed by ``tail -f``), what is done is embedded and handed out at once.
        On the CPU a group is one worker's chunk, embedded by that worker; a
        chunk never waits for input that has not arrived.
        """
        inbox: SimpleQueue = SimpleQueue()
        room = threading.Semaphore(self.prefetch)  # inputs read ahead of the workers: bounded
        stop = threading.Event()

        def feed() -> None:
            try:
                for item in images:
                    while not room.acquire(timeout=0.1):
                        if stop.is_set():
                            return
                    inbox.put(item)
                inbox.put(_END)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
                inbox.put(_Failed(exc))

        threading.Thread(target=feed, name="facecli-inputs", daemon=True).start()
        try:
            with ThreadPoolExecutor(self.workers) as pool:
                queue: deque[Future[list[ImageResult]]] = deque()
                pending: list[ImageResult] = []  # analysed, waiting to be embedded by this thread (GPU)
                n_faces = in_flight = submitted = 0
                size = 1  # images per chunk: 1 for each worker first, then doubling up to CHUNK (CPU)
                exhausted = False
                while True:
                    while not exhausted and in_flight < self.prefetch:
                        chunk: list = []
                        limit = min(size, self.prefetch - in_flight) if self.in_workers else 1
                        while len(chunk) < limit:
                            try:  # wait for input only when there is nothing else to do
                                item = inbox.get(block=not queue and not pending and not chunk)
                            except Empty:
                                break
                            if item is _END:
                                exhausted = True
                                break
                            if isinstance(item, _Failed):
                                raise item.exc
                            room.release()
                            chunk.append(item)
                        if not chunk:
                            break
                        queue.append(pool.submit(self._work, chunk, rgb))
                        in_flight += len(chunk)
                        submitted += 1
                        if submitted % self.workers == 0:
                            size = min(2 * size, self.CHUNK)
                    if not queue:
                        if pending:  # the input is slow (or over): hand out what is done
                            self._embed_results(pending)
                            yield pending
                            pending, n_faces = [], 0
                        if exhausted:
                            break
                        continue
                    results = queue.popleft().result()
                    in_flight -= len(results)
                    if self.in_workers:  # embedded by the worker
                        yield results
                        continue
                    pending += results
                    n_faces += sum(len(r.faces) for r in results)
                    if n_faces >= self.batch_size or len(pending) >= self.prefetch:  # faceless runs still flow
                        self._embed_results(pending)
                        yield pending
                        pending, n_faces = [], 0
        finally:
            stop.set()

    def _work(self, chunk: list[str | np.ndarray | FaceCliError], rgb: bool | None = None) -> list[ImageResult]:
        """A worker's job: analyse a few images and, on the CPU, embed all their faces in one batch; an image
        that ran out of memory is then tried once more alone."""
        with self._turns.together():
            results = [_failed(item) if isinstance(item, FaceCliError) else self.analyse(item, rgb) for item in chunk]
            if self.in_workers:
                self._embed_results(results)
        for i, result in enumerate(results):
            if isinstance(result.error, OutOfMemory):
                with self._turns.alone():
                    results[i] = self.analyse(chunk[i], rgb)  # type: ignore[arg-type]
                    if self.in_workers:
                        self._embed_results(results[i:i + 1])
        return results


_END = object()  # the end of the input


class _Failed:
    """The exception the input raised, carried to the consumer."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _failed(error: FaceCliError) -> ImageResult:
    return ImageResult(error.subject, error=error)


def _displayed_size(data: bytes, path: str, decoded: np.ndarray, shrink: int) -> tuple[int, int]:
    """(width, height) of the full image as displayed: the decoded one's, or for a JPEG decoded at 1/``shrink``,
    its header's (turned as the decoded one is: EXIF orientation may swap them)."""
    h, w = decoded.shape[:2]
    if shrink == 1:
        return w, h
    header = read_header(data, path)
    stored = (-(-header.width // shrink), -(-header.height // shrink))
    return (header.width, header.height) if stored == (w, h) else (header.height, header.width)


def check_pixels(pixels: np.ndarray, name: str, rgb: bool = False) -> None:
    """Refuse, in one line, an array that cannot be an 8-bit image: another dtype (a float image in 0-1), or a
    shape other than HxW, HxWx3 or HxWx4. Which of BGR and RGB it is cannot be told: ``rgb`` says."""
    expected = f"expected an HxWx3 uint8 image in {'RGB' if rgb else 'BGR'} order"
    got = f"got {pixels.dtype} of shape {pixels.shape}"
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)):
        raise InputError(name, f"{expected} (or HxW grey, HxWx4 with alpha), {got}")
    if pixels.dtype != np.uint8:
        hint = ": scale it to 0-255 and convert it with .astype(np.uint8)" if pixels.dtype.kind == "f" else ""
        raise InputError(name, f"{expected}, {got}{hint}")
    if min(pixels.shape[:2]) == 0:
        raise InputError(name, f"an empty image, of shape {pixels.shape}")
