"""Face detectors behind one small interface: ``detect(rgb image) -> [Detection]``, largest first.

One file per detector: ``mtcnn`` (FaceNet's cascade), ``yunet`` (OpenCV Zoo's
single-pass network) and ``haar`` (OpenCV's Viola-Jones cascade, no
landmarks). Each reads its settings and preprocessing from the model
manifest. This module stays light (no OpenCV, no onnxruntime): the CLI reads
``DETECTORS`` and ``DET_SIZE`` while parsing, and ``create_detector`` imports a
detector's module only when one is made.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Protocol

from facecli.errors import BadValue

if TYPE_CHECKING:
    import numpy as np

    from facecli.values import Detection

#: The detectors ``--detector`` chooses from, and the class that implements each.
DETECTORS = {"mtcnn": "MTCNN", "yunet": "YuNet", "haar": "Haar"}
#: Default longest side, in pixels, of the image a detector works on.
DET_SIZE = 640


class Detector(Protocol):
    name: str
    landmarks: bool  # whether its detections carry the five landmarks
    provider: str  # where it runs: cpu, cuda or tensorrt

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 image, largest first, boxes and landmarks in its pixels."""
        ...


def create_detector(name: str = "yunet", device: str = "auto", max_side: int = DET_SIZE) -> Detector:
    """The detector ``name``, working on a copy at most ``max_side`` pixels long (0 = full size)."""
    if name not in DETECTORS:
        raise BadValue("detector", name, f"unknown detector (choose from {', '.join(DETECTORS)})")
    cls = getattr(import_module(f"facecli.detectors.{name}"), DETECTORS[name])
    return cls(device=device, max_side=max_side)
