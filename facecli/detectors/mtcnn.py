"""MTCNN, FaceNet's own detector (``align/detect_face.py``), on onnxruntime.

An image pyramid through P-Net, then R-Net and O-Net on the survivors, with
FaceNet's settings (minimum face 20 px, thresholds 0.6/0.7/0.7, pyramid
factor 0.709). These weights were trained on transposed images (Caffe's
column-major legacy), so every crop is fed width-first, as the manifest's
``NWHC`` says.
"""

from __future__ import annotations

import cv2
import numpy as np

from facecli.detectors import DET_SIZE
from facecli.detectors.common import nms, working_copy
from facecli.models import spec
from facecli.runtime import create_session, provider_name
from facecli.values import Detection


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (``rerec``)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply the networks' box corrections (``bbreg``)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out = boxes.copy()
    out[:, 0] += reg[:, 0] * w
    out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w
    out[:, 3] += reg[:, 3] * h
    return out


def _crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Zero-padded crops of 1-based inclusive integer boxes, resized to size x size."""
    height, width = image.shape[:2]
    out = np.empty((boxes.shape[0], size, size, 3), dtype=np.float32)
    for k, (x1, y1, x2, y2) in enumerate(boxes.astype(np.int64)):
        bw, bh = x2 - x1 + 1, y2 - y1 + 1
        patch = np.zeros((max(bh, 1), max(bw, 1), 3), dtype=np.uint8)
        sx1, sy1 = max(x1 - 1, 0), max(y1 - 1, 0)
        sx2, sy2 = min(x2, width), min(y2, height)
        if sx2 > sx1 and sy2 > sy1:
            patch[sy1 - (y1 - 1):sy2 - (y1 - 1), sx1 - (x1 - 1):sx2 - (x1 - 1)] = image[sy1:sy2, sx1:sx2]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


class MTCNN:
    """FaceNet's three-stage cascade on onnxruntime.

    ``max_side`` bounds the working resolution (larger images are detected on
    a downscaled copy, boxes mapped back); ``min_score`` drops final detections
    below that O-Net confidence. The three small networks each run on one
    thread: their layers are too small to split (two threads measured 1.5x
    slower), so parallelism comes from detecting several images at once.
    """

    name = "mtcnn"
    landmarks = True

    def __init__(self, device: str = "auto", min_size: int = 20,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, max_side: int = DET_SIZE, min_score: float = 0.95) -> None:
        self.min_size = min_size
        self.min_score = min_score
        self.thresholds = thresholds
        self.factor = factor
        self.max_side = max_side
        self._nets = []
        for stage in ("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet"):
            s = spec(stage)
            session = create_session(s, device, threads=1)
            self._nets.append((session, s.input["name"], s.preprocess["mean"], s.preprocess["std"]))
        self.provider = provider_name(self._nets[0][0])

    def _run(self, stage: int, batch: np.ndarray) -> list[np.ndarray]:
        session, name, mean, std = self._nets[stage]
        x = ((batch - mean) / std).astype(np.float32).transpose(0, 2, 1, 3)  # width-first
        return session.run(None, {name: np.ascontiguousarray(x)})

    def detect(self, image: np.ndarray) -> list[Detection]:
        work, scale_back = working_copy(image, self.max_side)
        boxes, scores, points = self._detect(work)
        # FaceNet's thresholds admit low-confidence O-Net outputs (furniture at
        # 0.94 in obama.jpg); a final floor keeps them out of the results.
        # Boxes of faces cut by the frame reach outside it: report them clipped
        # (the crop clips the same way, so nothing is lost).
        limit = np.array([image.shape[1], image.shape[0]] * 2, dtype=np.float64)
        boxes = np.clip(boxes * scale_back, 0, limit)
        faces = [
            Detection(tuple(float(v) for v in b), float(s), p * scale_back)
            for b, s, p in zip(boxes, scores, points) if s >= self.min_score
        ]
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def _detect(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        height, width = img.shape[:2]
        empty = (np.empty((0, 4)), np.empty(0), np.empty((0, 5, 2)))
        t1, t2, t3 = self.thresholds

        # Stage 1: P-Net over the pyramid.
        m = 12.0 / self.min_size
        min_layer = min(height, width) * m
        scales = []
        while min_layer >= 12:
            scales.append(m * self.factor ** len(scales))
            min_layer *= self.factor
        candidates = []
        for scale in scales:
            hs, ws = int(np.ceil(height * scale)), int(np.ceil(width * scale))
            scaled = cv2.resize(img, (ws, hs), interpolation=cv2.INTER_AREA).astype(np.float32)
            reg, prob = self._run(0, scaled[None])
            # outputs are width-first: (1, W', H', C) -> (H', W', C)
            prob = prob[0, :, :, 1].T
            reg = reg[0].transpose(1, 0, 2)
            rows, cols = np.nonzero(prob >= t1)
            if rows.size == 0:
                continue
            b = np.stack([np.fix((2 * cols + 1) / scale), np.fix((2 * rows + 1) / scale),
                          np.fix((2 * cols + 12) / scale), np.fix((2 * rows + 12) / scale)], axis=1)
            s = prob[rows, cols]
            r = reg[rows, cols]
            keep = nms(b, s, 0.5)
            candidates.append((b[keep], s[keep], r[keep]))
        if not candidates:
            return empty
        boxes = np.concatenate([c[0] for c in candidates])
        scores = np.concatenate([c[1] for c in candidates])
        reg = np.concatenate([c[2] for c in candidates])
        keep = nms(boxes, scores, 0.7)
        boxes, scores, reg = boxes[keep], scores[keep], reg[keep]
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        boxes = np.stack([boxes[:, 0] + reg[:, 0] * w, boxes[:, 1] + reg[:, 1] * h,
                          boxes[:, 2] + reg[:, 2] * w, boxes[:, 3] + reg[:, 3] * h], axis=1)
        boxes = np.fix(_square(boxes))

        # Stage 2: R-Net refines and rejects.
        reg, prob = self._run(1, _crops(img, boxes, 24))
        ok = prob[:, 1] > t2
        boxes, scores, reg = boxes[ok], prob[ok, 1], reg[ok]
        if boxes.shape[0] == 0:
            return empty
        keep = nms(boxes, scores, 0.7)
        boxes = _square(_regress(boxes[keep], reg[keep]))
        scores = scores[keep]

        # Stage 3: O-Net gives the final boxes and the five landmarks.
        boxes = np.fix(boxes)
        reg, pts, prob = self._run(2, _crops(img, boxes, 48))
        ok = prob[:, 1] > t3
        boxes, scores, reg, pts = boxes[ok], prob[ok, 1], reg[ok], pts[ok]
        if boxes.shape[0] == 0:
            return empty
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        px = w * pts[:, 0:5] + boxes[:, 0:1] - 1
        py = h * pts[:, 5:10] + boxes[:, 1:2] - 1
        boxes = _regress(boxes, reg)
        keep = nms(boxes, scores, 0.7, "min")
        points = np.stack([px, py], axis=2)[keep]
        return boxes[keep], scores[keep], points
