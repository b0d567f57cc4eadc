"""OpenCV's Viola-Jones frontal-face cascade: fast, no landmarks, frontal only."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from facecli.detectors import DET_SIZE
from facecli.detectors.common import working_copy
from facecli.errors import ModelError
from facecli.models import spec, verified_bytes
from facecli.values import Detection


class Haar:
    """OpenCV's Viola-Jones frontal-face cascade: fast, no landmarks, frontal only.

    A CascadeClassifier must not be shared between threads, so each thread
    that detects loads its own (a few milliseconds).
    """

    name = "haar"
    landmarks = False
    provider = "cpu"

    def __init__(self, device: str = "cpu", min_size: int = 20, max_side: int = DET_SIZE) -> None:
        del device  # OpenCV runs the cascade on the CPU whatever the device
        # OpenCV reads the cascade from these bytes, checked against the manifest: never from the path again
        self._xml = verified_bytes(spec("haar")).decode()
        self._local = threading.local()
        self.min_size = min_size
        self.max_side = max_side
        self._equalize = spec("haar").preprocess.get("equalize_hist", False)
        self._cascade()  # fail now, not in a worker, when the file does not load

    def _cascade(self) -> cv2.CascadeClassifier:
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            cascade = cv2.CascadeClassifier()
            storage = cv2.FileStorage(self._xml, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
            cascade.read(storage.getFirstTopLevelNode())
            if cascade.empty():
                raise ModelError("model haar", "OpenCV could not load the cascade")
            self._local.cascade = cascade
        return cascade

    def detect(self, image: np.ndarray) -> list[Detection]:
        work, scale = working_copy(image, self.max_side)
        gray = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY)
        if self._equalize:
            gray = cv2.equalizeHist(gray)
        rects, _levels, weights = self._cascade().detectMultiScale3(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(self.min_size, self.min_size),
            outputRejectLevels=True)
        faces = [
            Detection((x * scale, y * scale, (x + w) * scale, (y + h) * scale), float(score))
            for (x, y, w, h), score in zip(np.reshape(rects, (-1, 4)).astype(float), np.ravel(weights))
        ]
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces
