"""Face crops in, unit-length embeddings out, in batches on onnxruntime.

``Embedder`` runs one model; ``FaceEmbedder`` is what ``--model`` names: one
model, or several fused (each one's unit embedding, concatenated and scaled
back to unit length), each fed the crop its manifest entry asks for.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property

import numpy as np

from facecli.alignment import align_five_points, crop_face
from facecli.errors import BadValue, ModelError, OutOfMemory
from facecli.models import DEFAULT_MODEL, ModelSpec, PipelineSpec, pipeline_spec, spec
from facecli.runtime import create_session, provider_name
from facecli.values import Detection


class Embedder:
    """An ONNX embedding model driven by its manifest entry."""

    def __init__(self, model: str = "facenet", device: str = "auto", batch_size: int = 32,
                 flip: bool = False, margin: float | None = None, threads: int = 0) -> None:
        self.spec: ModelSpec = spec(model)
        self._margin = margin
        self._device = device
        self._threads = threads  # intra-op threads; 0: FACECLI_THREADS, else onnxruntime's choice (the cores)
        # On one thread, a network whose activations fit in cache at small batches runs faster in small runs
        # (SFace: 73 faces/s at 2-4 rows, 58 at 32; bench/RESULTS.md): the manifest's cpu_batch says how small.
        self.batch_size = min(batch_size, self.spec.cpu_batch or batch_size) if threads == 1 else batch_size
        self.flip = flip
        self._input = self.spec.input["name"]
        self._output = self.spec.output["name"]
        self._mean = np.float32(self.spec.preprocess["mean"])
        self._scale = np.float32(1.0 / self.spec.preprocess["std"])
        self._loading: Future | None = None

    def preload(self) -> None:
        """Start creating the session in a background thread.

        Loading and optimising the 94 MB FaceNet graph takes ~0.3 s; a
        pipeline starts it here so it overlaps decoding and detecting the
        first images instead of adding to a cold start.
        """
        if self._loading is None and "session" not in self.__dict__:
            pool = ThreadPoolExecutor(1, thread_name_prefix="facecli-load")
            self._loading = pool.submit(self._create)
            pool.shutdown(wait=False)

    def _create(self):
        return create_session(self.spec, self._device, threads=self._threads, optimise=True)

    @cached_property
    def session(self):
        """Created on first use (or by ``preload``), so `facecli detect` never loads the embedding model.

        A background load that failed (onnxruntime's bad_alloc while a large
        image was being decoded beside it) is tried once more here; if memory
        is still short, the next use tries again (nothing is cached).
        """
        if self._loading is not None:
            try:
                return self._loading.result()
            except (ModelError, OutOfMemory):
                self._loading = None
        return self._create()

    @property
    def provider(self) -> str:
        return provider_name(self.session)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dim(self) -> int:
        return int(self.spec.output["dim"])

    @property
    def size(self) -> tuple[int, int]:
        width, height = self.spec.input["size"]
        return width, height

    @property
    def margin(self) -> float:
        """Pixels added around the detector's box (the manifest's, unless overridden)."""
        return float(self._margin if self._margin is not None else self.spec.alignment.get("margin", 0))

    @cached_property
    def _template(self) -> np.ndarray:
        """Where a five-point alignment puts the landmarks, in pixels of the crop."""
        return np.asarray(self.spec.alignment["template"], dtype=np.float64)

    @property
    def alignment(self) -> str:
        """``box-margin`` (the detector's box grown by a margin) or ``five-point`` (landmarks warped to a template)."""
        return self.spec.alignment["method"]

    def crop(self, image: np.ndarray, det: Detection, scale: float = 1.0) -> np.ndarray:
        """The input crop of one face; ``scale`` is the image's size relative to the photo (margins shrink with it)."""
        if self.alignment == "five-point":
            if det.landmarks is None:
                raise BadValue("model", self.name, "needs the five landmarks of a face: use the yunet or mtcnn "
                                                   "detector")
            return align_five_points(image, det.landmarks, self.size, self._template)
        return crop_face(image, det, self.size, self.margin * scale)

    def too_small(self, det: Detection, scale: float) -> bool:
        """Whether a face is smaller in this image than the model's input, so its crop would be upscaled."""
        return min(det.width, det.height) + self.margin * scale < min(self.size)

    def _run(self, crops: np.ndarray) -> np.ndarray:
        x = (crops.astype(np.float32) - self._mean) * self._scale
        if self.spec.input["layout"] == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return self.session.run([self._output], {self._input: np.ascontiguousarray(x)})[0]

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB crops -> (N, dim) float32 unit vectors.

        With ``flip`` the embedding of each crop and of its mirror image are
        summed and re-normalised (test-time augmentation); the mirror images
        go through the network in the same run as the crops (one call of
        twice the batch instead of two).
        """
        return self.embed_views(crops)[0]

    def embed_with_norms(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``embed``, and the length of the network's raw output for each crop (and its mirror, with ``flip``):
        (N, dim) unit vectors, (N, 1 or 2) norms. For a margin-trained embedder such as SFace the raw
        norm is a measure of face quality (bench/ACCURACY.md, issue 20)."""
        return self.embed_views(crops)[:2]

    def embed_views(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``embed_with_norms``, and with ``flip`` the cosine between each crop's raw embedding and its mirror
        image's (None without flip): a face the network sees alike both ways round is one it can judge
        (``facecli.quality``), known for nothing since both views are embedded anyway."""
        views = 2 if self.flip else 1
        if len(crops) == 0:
            empty = np.empty((0,), dtype=np.float32)
            return (np.empty((0, self.dim), dtype=np.float32), np.empty((0, views), dtype=np.float32),
                    empty if self.flip else None)
        out, norms, mirror = [], [], []
        for start in range(0, len(crops), self.batch_size):
            batch = crops[start:start + self.batch_size]
            # the mirror images go through the network in the same run as the crops: one call, twice the rows
            both = self._run(np.concatenate([batch, batch[:, :, ::-1]]) if self.flip else batch)
            raw = [both[:len(batch)], both[len(batch):]] if self.flip else [both]
            lengths = np.stack([np.linalg.norm(r, axis=1) for r in raw], axis=1)
            norms.append(lengths)
            if self.flip:
                mirror.append(np.sum(raw[0] * raw[1], axis=1) / np.maximum(lengths[:, 0] * lengths[:, 1], 1e-12))
            out.append(sum(raw))
        emb = np.concatenate(out).astype(np.float32, copy=False)
        agreement = np.concatenate(mirror).astype(np.float32) if self.flip else None
        return (emb / np.linalg.norm(emb, axis=1, keepdims=True), np.concatenate(norms).astype(np.float32),
                agreement)


def fuse(parts: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Unit embeddings of several models (each (..., dim_i)) -> one unit embedding (..., sum of dim_i).

    Each part is scaled by the square root of its share of the weights, so the
    result's squared distance is the weighted mean of the parts' distances.
    """
    if len(parts) == 1:
        return parts[0]
    shares = np.asarray(weights, dtype=np.float32) / np.float32(sum(weights))
    emb = np.concatenate([np.sqrt(share) * p for share, p in zip(shares, parts)], axis=-1)
    return emb / np.linalg.norm(emb, axis=-1, keepdims=True)


class FaceEmbedder:
    """The embedding pipeline ``--model`` names: one model, or several fused (see ``PipelineSpec``)."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "auto", batch_size: int = 32,
                 flip: bool | None = None, margin: float | None = None, threads: int = 0) -> None:
        self.spec: PipelineSpec = pipeline_spec(model)
        # flip None: test-time flip where the manifest measured it to help; True/False: for every model
        self.parts = [Embedder(name, device, batch_size, name in self.spec.flip if flip is None else flip, margin,
                               threads) for name in self.spec.components]
        self.batch_size = batch_size
        self.weights = self.spec.weights or [1.0] * len(self.parts)

    def fuse(self, parts: list[np.ndarray]) -> np.ndarray:
        """(N, dim_i) unit embeddings of each model -> (N, dim) fused unit embeddings."""
        return fuse(parts, self.weights)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dim(self) -> int:
        return sum(p.dim for p in self.parts)

    @property
    def provider(self) -> str:
        return self.parts[0].provider

    def preload(self) -> None:
        for part in self.parts:
            part.preload()

    def needs_landmarks(self) -> bool:
        return any(p.alignment == "five-point" for p in self.parts)

    def embed(self, crops: list[tuple[np.ndarray, ...]]) -> np.ndarray:
        """Each face's crops, one per model in order -> (N, dim) float32 unit vectors."""
        if not crops:
            return np.empty((0, self.dim), dtype=np.float32)
        return self.fuse([p.embed(np.stack([c[i] for c in crops])) for i, p in enumerate(self.parts)])

    @property
    def measuring(self) -> int:
        """The part whose crop and raw outputs the face's quality is measured on: the first one run with flip
        (its mirror agreement comes free), else the first."""
        return next((i for i, p in enumerate(self.parts) if p.flip), 0)

    def embed_measured(self, crops: list[tuple[np.ndarray, ...]]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``embed``, and of the ``measuring`` part: each face's raw output norm (the mean over its views) and,
        with flip, the cosine between its crop's and its mirror's raw embeddings (else None)."""
        if not crops:
            flipped = self.parts[self.measuring].flip
            return (np.empty((0, self.dim), dtype=np.float32), np.empty((0,), dtype=np.float32),
                    np.empty((0,), dtype=np.float32) if flipped else None)
        units, norms, mirror = [], np.empty((0,), dtype=np.float32), None
        for i, p in enumerate(self.parts):
            unit, lengths, agreement = p.embed_views(np.stack([c[i] for c in crops]))
            units.append(unit)
            if i == self.measuring:
                norms, mirror = lengths.mean(axis=1), agreement
        return self.fuse(units), norms, mirror
