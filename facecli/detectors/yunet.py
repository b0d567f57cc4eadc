"""YuNet (OpenCV Zoo, 2023mar) on onnxruntime, decoded as OpenCV's ``FaceDetectorYN`` does."""

from __future__ import annotations

import numpy as np

from facecli.detectors import DET_SIZE
from facecli.detectors.common import nms, working_copy
from facecli.models import spec
from facecli.runtime import create_session, provider_name
from facecli.values import Detection


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
        self._session = create_session(s, device, threads=1, optimise=True)
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
        keep = nms(np.column_stack([ibox[:, :2], ibox[:, :2] + ibox[:, 2:] - 1]), faces[:, 14], self.nms)
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
