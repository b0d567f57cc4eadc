"""What the detectors share: the working copy they detect on, and non-maximum suppression."""

from __future__ import annotations

import cv2
import numpy as np


def working_copy(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The image downscaled so its longest side is at most ``max_side``, and the factor back.

    Detection cost grows with pixels (the P-Net pyramid of a 12 MP photo is
    seconds of work) while a face found at 640 px is still found at 640 px:
    only faces below the detector's minimum size there (20 px, about 3 % of
    the longest side) are lost. ``--det-size`` raises it for crowd photos.
    """
    longest = max(image.shape[:2])
    if not max_side or longest <= max_side:
        return image, 1.0
    scale = longest / max_side
    size = (max(1, round(image.shape[1] / scale)), max(1, round(image.shape[0] / scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (inclusive pixel boxes)."""
    if boxes.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores, kind="stable")
    keep = []
    while order.size:
        i = order[-1]
        keep.append(i)
        rest = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        union = np.minimum(area[i], area[rest]) if method == "min" else area[i] + area[rest] - inter
        order = rest[inter / union <= threshold]
    return np.asarray(keep, dtype=np.int64)
