"""image -> faces -> embeddings, as a stream over many images.

Decoding runs ahead in worker threads (OpenCV releases the GIL while it
decodes), detection runs in order, and the face crops of several images are
embedded together in one batch. Results come out in input order, one
``ImageResult`` per input, with the error instead of faces when an input is
bad, so a caller can report it and carry on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from facecli.alignment import crop_face
from facecli.detection import Detection, create_detector
from facecli.embedding import Embedder
from facecli.errors import FaceCliError
from facecli.imageio import decode, read_bytes
from facecli.sources import sha256_bytes


@dataclass
class Face:
    index: int
    detection: Detection
    crop: np.ndarray
    embedding: np.ndarray | None = None


@dataclass
class ImageResult:
    path: str
    faces: list[Face] = field(default_factory=list)
    error: FaceCliError | None = None
    sha256: str | None = None  # of the file's bytes: the identity of a photo


def _load(path: str) -> tuple[np.ndarray, str]:
    data = read_bytes(path)
    return decode(data, path), sha256_bytes(data)


class Pipeline:
    """Detector + embedder with their settings, created once per command."""

    def __init__(self, detector: str = "mtcnn", model: str = "facenet", device: str = "auto",
                 flip: bool = False, batch_size: int = 32, embed: bool = True,
                 decode_workers: int = 2, prefetch: int = 8) -> None:
        self.embedder = Embedder(model, device, batch_size, flip)
        self.detector = create_detector(detector, device)
        self.embed = embed
        self.batch_size = batch_size
        self.decode_workers = decode_workers
        self.prefetch = prefetch

    @property
    def provider(self) -> str:
        """The execution provider of the heaviest model this pipeline runs."""
        return self.embedder.provider if self.embed else self.detector.provider

    def _analyse(self, path: str, future: Future) -> ImageResult:
        try:
            image, sha = future.result()
        except FaceCliError as exc:
            return ImageResult(path, error=exc)
        detections = self.detector.detect(image)
        faces = [Face(i, d, crop_face(image, d, self.embedder.size, self.embedder.margin))
                 for i, d in enumerate(detections)]
        return ImageResult(path, faces, sha256=sha)

    def _flush(self, pending: list[ImageResult]) -> None:
        faces = [f for r in pending for f in r.faces]
        if self.embed and faces:
            emb = self.embedder.embed(np.stack([f.crop for f in faces]))
            for face, vector in zip(faces, emb):
                face.embedding = vector

    def run(self, paths: Iterable[str]) -> Iterator[ImageResult]:
        """Analyse each path; memory stays bounded by ``prefetch`` and ``batch_size``."""
        with ThreadPoolExecutor(self.decode_workers) as pool:
            queue: deque[tuple[str, Future]] = deque()
            pending: list[ImageResult] = []
            n_faces = 0
            it = iter(paths)
            exhausted = False
            while True:
                while not exhausted and len(queue) < self.prefetch:
                    try:
                        path = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    queue.append((path, pool.submit(_load, path)))
                if not queue:
                    break
                path, future = queue.popleft()
                result = self._analyse(path, future)
                pending.append(result)
                n_faces += len(result.faces)
                if n_faces >= self.batch_size:
                    self._flush(pending)
                    yield from pending
                    pending, n_faces = [], 0
            self._flush(pending)
            yield from pending
