"""Turn a detection into the crop an embedder was trained on.

FaceNet was evaluated on MTCNN boxes grown by ``margin / 2`` on each side
(clipped to the image) and resized bilinearly to 160x160; that is what
``crop_face`` reproduces, with the margin taken from the model manifest.
"""

from __future__ import annotations

import cv2
import numpy as np

from facecli.values import Detection


def margin_box(det: Detection, shape: tuple[int, ...], margin: float) -> tuple[int, int, int, int]:
    """Integer crop box as FaceNet's ``align_dataset_mtcnn``: box ± margin/2, clipped, truncated."""
    height, width = shape[:2]
    x1, y1, x2, y2 = det.box
    half = margin / 2
    return (int(max(x1 - half, 0)), int(max(y1 - half, 0)),
            int(min(x2 + half, width)), int(min(y2 + half, height)))


def crop_face(image: np.ndarray, det: Detection, size: tuple[int, int], margin: float) -> np.ndarray:
    """The RGB uint8 face crop of ``size`` (width, height) for one detection."""
    x1, y1, x2, y2 = margin_box(det, image.shape, margin)
    if x2 <= x1 or y2 <= y1:  # a box entirely outside the image: use its clipped edge
        x1, y1 = min(x1, image.shape[1] - 1), min(y1, image.shape[0] - 1)
        x2, y2 = x1 + 1, y1 + 1
    return cv2.resize(image[y1:y2, x1:x2], size, interpolation=cv2.INTER_LINEAR)


def center_crop(image: np.ndarray, size: tuple[int, int], fraction: float = 0.64) -> np.ndarray:
    """The middle ``fraction`` of the image: FaceNet's fallback when no face is found."""
    height, width = image.shape[:2]
    cw, ch = int(width * fraction), int(height * fraction)
    x1, y1 = (width - cw) // 2, (height - ch) // 2
    return cv2.resize(image[y1:y1 + ch, x1:x1 + cw], size, interpolation=cv2.INTER_LINEAR)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 rotation + uniform scale + translation that maps ``src`` points onto ``dst`` best
    (least squares), as OpenCV's ``FaceRecognizerSF.alignCrop`` estimates it (Umeyama 1991).

    In 2-D the optimum has a closed form: with both point sets centred, the
    matrix is ``[[a, -b], [b, a]]`` with ``a = sum(s . d) / sum(|s|^2)`` and
    ``b = sum(s x d) / sum(|s|^2)``, the same solution as Umeyama's SVD. It is
    written with element-wise sums on purpose: this runs in the pipeline's
    worker threads, and a first BLAS or LAPACK call on a thread makes OpenBLAS
    map a 32 MB buffer for it, which under a memory limit ends the process
    (exit 1) instead of failing one image.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - src_mean, dst - dst_mean
    norm = (s * s).sum()
    a = (s * d).sum() / norm
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / norm
    linear = np.array([[a, -b], [b, a]])
    matrix = np.empty((2, 3))
    matrix[:, :2] = linear
    matrix[:, 2] = dst_mean - (linear * src_mean).sum(axis=1)
    return matrix


def align_five_points(image: np.ndarray, landmarks: np.ndarray, size: tuple[int, int],
                      template: np.ndarray) -> np.ndarray:
    """The face warped so its eyes, nose and mouth corners land on ``template`` (ArcFace's 112x112 layout)."""
    matrix = similarity_transform(landmarks, template)
    return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR)
