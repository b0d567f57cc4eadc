"""Quantise a float ONNX embedder to int8 (QDQ, per-channel), calibrated on augmented face crops.

Runs as a script inside the build-only virtual environment (onnx, onnxruntime,
numpy and OpenCV, pinned in the manifest); facecli never imports it. Usage:

    python quantize_onnx.py SRC.onnx DST.onnx --spec SPEC.json --photos DIR

SPEC.json holds the model's manifest entry (input layout, size, preprocessing,
alignment) and the manifest's ``calibration`` section: the photos, the box and
five landmarks of the face in each, how many augmented crops to make per face
and the seed. The photos are never LFW's, which the accuracy figures use.

How, and why:

- Crops are made the way the pipeline makes them (the box grown by the margin,
  or the five landmarks warped onto the template), from copies of the photo
  that are rotated, scaled, shifted, mirrored, shrunk to LFW-like face sizes
  and changed in contrast, brightness, gamma, colour, sharpness, noise and
  JPEG quality, so the activation ranges cover more than six clean photos.
- Static QDQ quantisation with onnxruntime: weights int8 per output channel
  (symmetric), activations uint8 (asymmetric) from MinMax ranges; u8 x s8 is
  what onnxruntime's x86 kernels run fastest. Weights use 7 bits
  (``reduce_range``): x86 CPUs without VNNI (most AVX2 ones) add pairs of
  u8 x s8 products in 16 bits, which saturates above 32767 (2 x 255 x 127 is
  64770, 2 x 255 x 64 is 32640), while VNNI CPUs never saturate. With 7-bit
  weights every x86 CPU computes the same integers, so the accuracy measured
  on one (an AVX-512 VNNI Zen 5 here) holds on all; it costs FaceNet 0.0004 of
  mean cosine to the float model (0.9986 instead of 0.9990 on LFW crops) and
  no speed.
- The calibrated ranges are rounded outward to three significant digits
  before the weights are quantised, so that last-bit differences between the
  float kernels of two CPUs do not change a single byte of the result: the
  manifest pins its sha256.
- Every layer is quantised, the embedding layer included: FaceNet's int8
  embeddings stay at cosine 0.9986 to the float ones (SFace's do not, with or
  without its last layer in float: it stays float, see bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

MIRROR = [1, 0, 2, 4, 3]  # landmark order after a horizontal flip: eyes and mouth corners swap


def _similarity(src, dst):
    """Least-squares rotation + uniform scale + translation from ``src`` to ``dst`` points (Umeyama)."""
    # the build environment's libraries (TensorFlow, onnx): imported where used, so that the
    # package imports this script without them
    import numpy as np

    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - src_mean, dst - dst_mean
    u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.array([1.0, -1.0 if np.linalg.det(d.T @ s) < 0 else 1.0])
    scale = (sigma * sign).sum() / s.var(axis=0).sum()
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * (u @ np.diag(sign) @ vt)
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


def _crop(image, box, landmarks, spec):
    """The model's input crop of one face, made as the pipeline makes it."""
    # the build environment's libraries (TensorFlow, onnx): imported where used, so that the
    # package imports this script without them
    import cv2
    import numpy as np

    size = tuple(spec["input"]["size"])
    alignment = spec["alignment"]
    if alignment["method"] == "five-point":
        matrix = _similarity(landmarks, np.asarray(alignment["template"], dtype=np.float64))
        return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR)
    half = alignment.get("margin", 0) / 2
    h, w = image.shape[:2]
    x1, y1 = int(max(box[0] - half, 0)), int(max(box[1] - half, 0))
    x2, y2 = int(min(box[2] + half, w)), int(min(box[3] + half, h))
    return cv2.resize(image[y1:y2, x1:x2], size, interpolation=cv2.INTER_LINEAR)


def _variant(image, box, landmarks, rng):
    """A randomly changed copy of the photo and where the face is in it."""
    # the build environment's libraries (TensorFlow, onnx): imported where used, so that the
    # package imports this script without them
    import cv2
    import numpy as np

    h, w = image.shape[:2]
    centre = landmarks.mean(axis=0)
    scale = math.exp(rng.uniform(-0.12, 0.12))
    # geometry: rotate, scale and shift about the face, sometimes mirror, sometimes shrink the face to 50-140 px
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), rng.uniform(-12, 12), scale)
    matrix[:, 2] += rng.uniform(-0.05, 0.05, 2) * max(box[2] - box[0], box[3] - box[1])
    if rng.random() < 0.5:
        matrix = np.array([[-1.0, 0, w - 1], [0, 1, 0]]) @ np.vstack([matrix, [0, 0, 1]])
        landmarks = landmarks[MIRROR]
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if rng.random() < 0.5:
        shrink = min(1.0, rng.uniform(50, 140) / (scale * max(box[2] - box[0], box[3] - box[1])))
        out = cv2.resize(out, (max(1, round(w * shrink)), max(1, round(h * shrink))), interpolation=cv2.INTER_AREA)
        matrix = matrix * shrink
    points = landmarks @ matrix[:, :2].T + matrix[:, 2]
    corners = np.array([[box[0], box[1]], [box[2], box[1]], [box[0], box[3]], [box[2], box[3]]]) @ matrix[:, :2].T \
        + matrix[:, 2]
    new_box = [*corners.min(axis=0), *corners.max(axis=0)]
    # photometry: contrast, brightness, gamma, colour balance, then grey, blur, noise and JPEG, each sometimes
    x = out.astype(np.float32)
    x = (x - 128) * rng.uniform(0.7, 1.3) + 128 + rng.uniform(-30, 30)
    x = 255 * (np.clip(x, 0, 255) / 255) ** math.exp(rng.uniform(-0.3, 0.3))
    x *= np.exp(rng.uniform(-0.08, 0.08, 3)).astype(np.float32)
    if rng.random() < 0.15:
        x[:] = x.mean(axis=2, keepdims=True)
    if rng.random() < 0.2:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.2))
    if rng.random() < 0.2:
        x += rng.normal(0, rng.uniform(1, 6), x.shape).astype(np.float32)
    out = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 91))])
        out = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return out, new_box, points


def calibration_crops(spec: dict, photos: Path, seed_offset: int = 0):
    """(N, H, W, 3) uint8 RGB crops: each calibration face as it is, then ``per_face - 1`` variants of it."""
    # the build environment's libraries (TensorFlow, onnx): imported where used, so that the
    # package imports this script without them
    import cv2
    import numpy as np

    cal = spec["calibration"]
    crops = []
    for i, face in enumerate(cal["faces"]):
        image = cv2.imread(str(photos / Path(face["member"]).name), cv2.IMREAD_COLOR)
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        box = np.asarray(face["box"], dtype=np.float64)
        landmarks = np.asarray(face["landmarks"], dtype=np.float64)
        rng = np.random.default_rng([cal["seed"] + seed_offset, i])
        crops.append(_crop(image, box, landmarks, spec))
        for _ in range(cal["per_face"] - 1):
            crops.append(_crop(*_variant(image, box, landmarks, rng), spec))
    return np.stack(crops)


def model_input(crops, spec: dict):
    """Crops preprocessed as the embedder feeds them (``Embedder._run``)."""
    # the build environment's libraries (TensorFlow, onnx): imported where used, so that the
    # package imports this script without them
    import numpy as np

    pre = spec["preprocess"]
    x = (crops.astype(np.float32) - np.float32(pre["mean"])) * np.float32(1.0 / pre["std"])
    if spec["input"]["layout"] == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x)


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a preprocessed array, 16 crops per batch."""

    def __init__(self, name: str, x) -> None:
        self._batches = iter([{name: x[i:i + 16]} for i in range(0, len(x), 16)])

    def get_next(self):
        return next(self._batches, None)


def _round_out(value: float, lower: bool) -> float:
    """``value`` to three significant digits, down for a lower bound and up for an upper one (ranges only widen)."""
    if value == 0 or not math.isfinite(value):
        return value
    exponent = math.floor(math.log10(abs(value))) - 2
    digits = value / 10.0 ** exponent
    return float(f"{math.floor(digits) if lower else math.ceil(digits)}e{exponent}")  # the decimal, not k * step


def _rounded(values, lower: bool):
    """A calibrated range bound (a float32 array) with each value rounded outward."""
    # the build environment's libraries (TensorFlow, onnx): imported where used, so that the
    # package imports this script without them
    import numpy as np

    values = np.asarray(values, dtype=np.float32)
    return np.array([_round_out(float(v), lower) for v in values.ravel()], dtype=np.float32).reshape(values.shape)


def quantize(src: str, dst: str, spec: dict, photos: Path) -> None:
    # the build environment's libraries (TensorFlow, onnx): imported where used, so that the
    # package imports this script without them
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, load_tensors_data, save_tensors_data
    from onnxruntime.quantization.shape_inference import quant_pre_process

    x = model_input(calibration_crops(spec, photos), spec)
    name = spec["input"]["name"]
    with tempfile.TemporaryDirectory(prefix="facecli-quantize-") as tmp:
        pre = f"{tmp}/pre.onnx"
        # onnxruntime's recommended preparation: shape inference and constant folding (BatchNorm into Conv)
        quant_pre_process(src, pre, skip_symbolic_shape=True)
        for n in (model := onnx.load(pre)).graph.node:  # every node named, from its output: stable across runs
            n.name = n.name or f"{n.op_type}_{n.output[0]}"
        onnx.save(model, pre)
        options = dict(quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                       activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                       calibrate_method=CalibrationMethod.MinMax,
                       extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        ranges = f"{tmp}/ranges.json"
        quantize_static(pre, f"{tmp}/first.onnx", _Reader(name, x), calibration_cache_path=ranges, **options)
        measured = load_tensors_data(ranges)
        rounded = {k: TensorData(lowest=_rounded(v.range_value[0], True), highest=_rounded(v.range_value[1], False))
                   for k, v in measured.items()}
        save_tensors_data(TensorsData(measured.calibration_method, rounded), ranges)
        quantize_static(pre, dst, None, calibration_cache_path=ranges, **options)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--spec", type=Path, required=True, help="the model's manifest entry and the calibration set")
    parser.add_argument("--photos", type=Path, required=True, help="folder holding the calibration photos")
    args = parser.parse_args()
    quantize(args.src, args.dst, json.loads(args.spec.read_text()), args.photos)
