"""Face crops in, unit-length embeddings out, in batches on onnxruntime."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property

import numpy as np

from facecli.models import ModelSpec, spec, verified_path
from facecli.runtime import create_session, provider_name


class Embedder:
    """An ONNX embedding model driven by its manifest entry."""

    def __init__(self, model: str = "facenet", device: str = "auto", batch_size: int = 32,
                 flip: bool = False, margin: float | None = None) -> None:
        self.spec: ModelSpec = spec(model)
        self._margin = margin
        self._device = device
        self.batch_size = batch_size
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
        return create_session(verified_path(self.spec.name), self._device, cache_key=self.spec.sha256[:16])

    @cached_property
    def session(self):
        """Created on first use (or by ``preload``), so `facecli detect` never loads the embedding model."""
        return self._loading.result() if self._loading is not None else self._create()

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

    def _run(self, crops: np.ndarray) -> np.ndarray:
        x = (crops.astype(np.float32) - self._mean) * self._scale
        if self.spec.input["layout"] == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return self.session.run([self._output], {self._input: np.ascontiguousarray(x)})[0]

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB crops -> (N, dim) float32 unit vectors.

        With ``flip`` the embedding of each crop and of its mirror image are
        summed and re-normalised (test-time augmentation).
        """
        if len(crops) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        out = []
        for start in range(0, len(crops), self.batch_size):
            batch = crops[start:start + self.batch_size]
            emb = self._run(batch)
            if self.flip:
                emb = emb + self._run(batch[:, :, ::-1])
            out.append(emb)
        emb = np.concatenate(out).astype(np.float32, copy=False)
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)
