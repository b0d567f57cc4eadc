"""Face detectors: MTCNN and YuNet (boxes, scores, 5 landmarks) and OpenCV's Haar cascade.

MTCNN follows FaceNet's own detector (``align/detect_face.py``): an image
pyramid through P-Net, then R-Net and O-Net on the survivors, with FaceNet's
settings (minimum face 20 px, thresholds 0.6/0.7/0.7, pyramid factor 0.709).
These weights were trained on transposed images (Caffe's column-major
legacy), so every crop is fed width-first, as the manifest's ``NWHC`` says.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from facecli.errors import FaceCliError, ModelError
from facecli.models import spec, verified_path
from facecli.runtime import create_session, provider_name

DETECTORS = ("mtcnn", "yunet", "haar")


@dataclass(frozen=True)
class Detection:
    """One face: box ``[x1, y1, x2, y2]`` in pixels of the original image."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None  # (5, 2): eyes, nose, mouth corners

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)


class Detector(Protocol):
    name: str
    landmarks: bool  # whether its detections carry the five landmarks

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 image, largest first."""
        ...


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
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
        overlap = inter / union
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


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


#: Default longest side, in pixels, of the image a detector works on.
DET_SIZE = 640


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
            session = create_session(verified_path(stage), device, threads=1)
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
            keep = _nms(b, s, 0.5)
            candidates.append((b[keep], s[keep], r[keep]))
        if not candidates:
            return empty
        boxes = np.concatenate([c[0] for c in candidates])
        scores = np.concatenate([c[1] for c in candidates])
        reg = np.concatenate([c[2] for c in candidates])
        keep = _nms(boxes, scores, 0.7)
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
        keep = _nms(boxes, scores, 0.7)
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
        keep = _nms(boxes, scores, 0.7, "min")
        points = np.stack([px, py], axis=2)[keep]
        return boxes[keep], scores[keep], points


class YuNet:
    """OpenCV Zoo's YuNet (2023mar) on onnxruntime, decoded as OpenCV's ``FaceDetectorYN`` does.

    One pass of a small anchor-free network over the whole image, padded with
    zeros to a multiple of 32: a score (sqrt of class x objectness), a box and
    five landmarks (eyes, nose tip, mouth corners, image-left first) per cell
    of strides 8, 16 and 32, then NMS at IoU ``nms``. Faster than MTCNN and
    the detector SFace was trained with. Feeds ``max_side`` pixels at most.
    """

    name = "yunet"
    landmarks = True

    def __init__(self, device: str = "auto", max_side: int = DET_SIZE, min_score: float | None = None,
                 nms: float | None = None, min_size: int = 10) -> None:
        s = spec("yunet")
        self.max_side = max_side
        self.min_score = s.postprocess["score"] if min_score is None else min_score
        self.nms = s.postprocess["nms"] if nms is None else nms
        self.min_size = min_size
        self._session = create_session(verified_path("yunet"), device, threads=1, cache_key=s.sha256[:16])
        self._input = s.input["name"]
        self._bgr = s.input["color"] == "BGR"
        self._strides = tuple(s.postprocess["strides"])
        self._outputs = [o.name for o in self._session.get_outputs()]
        self.provider = provider_name(self._session)

    def raw(self, image: np.ndarray) -> np.ndarray:
        """(N, 15) rows as ``FaceDetectorYN.detect`` returns them: x, y, w, h, 5 landmarks, score."""
        height, width = image.shape[:2]
        pad_h, pad_w = -(-height // 32) * 32, -(-width // 32) * 32
        x = np.zeros((1, 3, pad_h, pad_w), dtype=np.float32)
        x[0, :, :height, :width] = (image[:, :, ::-1] if self._bgr else image).transpose(2, 0, 1)
        outputs = dict(zip(self._outputs, self._session.run(None, {self._input: x})))
        rows = []
        for stride in self._strides:
            cols = pad_w // stride
            cls = np.clip(outputs[f"cls_{stride}"][0, :, 0], 0, 1)
            obj = np.clip(outputs[f"obj_{stride}"][0, :, 0], 0, 1)
            score = np.sqrt(cls * obj)
            keep = np.flatnonzero(score >= self.min_score)
            if keep.size == 0:
                continue
            r, c = (keep // cols).astype(np.float32), (keep % cols).astype(np.float32)
            bbox = outputs[f"bbox_{stride}"][0, keep]
            kps = outputs[f"kps_{stride}"][0, keep]
            cx, cy = (c + bbox[:, 0]) * stride, (r + bbox[:, 1]) * stride
            w, h = np.exp(bbox[:, 2]) * stride, np.exp(bbox[:, 3]) * stride
            points = np.empty((keep.size, 10), dtype=np.float32)
            points[:, 0::2] = (kps[:, 0::2] + c[:, None]) * stride
            points[:, 1::2] = (kps[:, 1::2] + r[:, None]) * stride
            rows.append(np.column_stack([cx - w / 2, cy - h / 2, w, h, points, score[keep]]))
        if not rows:
            return np.empty((0, 15), dtype=np.float32)
        faces = np.concatenate(rows).astype(np.float32)
        # NMS on integer boxes, as cv::dnn::NMSBoxes on the Rect2i that FaceDetectorYN builds
        ibox = faces[:, :4].astype(np.int32).astype(np.float64)
        keep = _nms(np.column_stack([ibox[:, :2], ibox[:, :2] + ibox[:, 2:] - 1]), faces[:, 14], self.nms)
        return faces[keep]

    def detect(self, image: np.ndarray) -> list[Detection]:
        work, scale = working_copy(image, self.max_side)
        limit = np.array([image.shape[1], image.shape[0]] * 2, dtype=np.float64)
        faces = []
        for row in self.raw(work).astype(np.float64) * np.r_[[scale] * 14, 1.0]:
            x, y, w, h = row[:4]
            if min(w, h) < self.min_size * scale:
                continue
            box = np.clip([x, y, x + w, y + h], 0, limit)
            faces.append(Detection(tuple(float(v) for v in box), float(row[14]), row[4:14].reshape(5, 2)))
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces


class Haar:
    """OpenCV's Viola-Jones frontal-face cascade: fast, no landmarks, frontal only.

    A CascadeClassifier must not be shared between threads, so each thread
    that detects loads its own (a few milliseconds).
    """

    name = "haar"
    landmarks = False
    provider = "cpu"

    def __init__(self, min_size: int = 20, max_side: int = DET_SIZE) -> None:
        self._path = str(verified_path("haar"))
        self._local = threading.local()
        self.min_size = min_size
        self.max_side = max_side
        self._equalize = spec("haar").preprocess.get("equalize_hist", False)
        self._cascade()  # fail now, not in a worker, when the file does not load

    def _cascade(self) -> cv2.CascadeClassifier:
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            cascade = cv2.CascadeClassifier(self._path)
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


def create_detector(name: str = "mtcnn", device: str = "auto", max_side: int = DET_SIZE) -> Detector:
    if name == "mtcnn":
        return MTCNN(device, max_side=max_side)
    if name == "yunet":
        return YuNet(device, max_side=max_side)
    if name == "haar":
        return Haar(max_side=max_side)
    raise FaceCliError(f"--detector {name}", f"unknown detector (choose from {', '.join(DETECTORS)})")
