"""Convert a TensorFlow Lite model (MediaPipe's face landmarker and blendshapes) to ONNX, checked against TFLite.

Runs as a script inside the build-only virtual environment (tensorflow-cpu, tf2onnx, onnx, onnxruntime);
facecli never imports it, so TensorFlow stays out of the runtime. Usage:

    python convert_tflite.py MODEL.tflite OUT.onnx OPSET

The converted graph is run by onnxruntime and by TensorFlow Lite's own interpreter on ``CHECKS`` seeded inputs
(uniform noise, and smooth images or point clouds, in the input's range); the conversion fails when any output
differs by more than ``TOLERANCE`` times the largest magnitude of that output (at least 1), so a graph that
computes something else is never pinned.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

#: shared with the other converters; loaded by its path, since the build runs each script with its folder off
#: sys.path (facecli/models.py ``_RUN_SCRIPT``)
_canonical = runpy.run_path(str(Path(__file__).with_name("canonical.py")))

#: the largest difference allowed between ONNX and TFLite outputs, relative to the output's scale
TOLERANCE = 1e-4
CHECKS = 6


def convert(tflite_path: str, out_path: str, opset: int) -> None:
    # the build environment's libraries (TensorFlow, onnx): imported where used, so that the
    # package imports this script without them
    import onnx
    import tensorflow as tf
    import tf2onnx
    from tf2onnx import optimizer

    # tf2onnx.convert.from_tflite, less its transpose optimiser: that one gives the blendshape model a different
    # graph in about one build of eight (185-194 nodes), which no renaming makes reproducible; without it both
    # graphs come out the same on every build, and onnxruntime, which cancels the transposes itself when it loads
    # the graph, runs them as fast (face landmarks 21 ms against 23 ms, blendshapes 1.1 ms against 1.05 ms)
    optimizers = {k: v for k, v in optimizer._get_optimizers().items() if k != "optimize_transpose"}
    with tf.device("/cpu:0"):
        model, _ = tf2onnx.convert._convert_common(None, tflite_path=tflite_path, name=Path(tflite_path).stem,
                                                   continue_on_error=True, opset=opset, optimizers=optimizers)
    # the batch axis is left unknown, named by a counter that differs from run to run
    for value in list(model.graph.input) + list(model.graph.output):
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param"):
                dim.dim_param = "batch"
    del model.graph.value_info[:]
    _canonical["canonicalise"](model.graph)
    _canonical["name_by_structure"](model.graph)
    model.producer_name = "facecli"
    model.doc_string = ""
    onnx.checker.check_model(model)
    onnx.save(model, out_path)
    check(tflite_path, out_path)


def _inputs(shape: tuple[int, ...], seed: int):
    """A test input: an image in [0, 1] (NHWC) or a point cloud in pixels (N x 2), noise or smooth by the seed."""
    # the build environment's libraries: imported where used
    import numpy as np

    rng = np.random.default_rng(seed)
    if len(shape) == 4:  # an image: noise, or blobs of colour as a face crop has
        if seed % 2 == 0:
            return rng.random(shape, dtype=np.float32)
        y, x = np.mgrid[0:shape[1], 0:shape[2]] / max(shape[1:3])
        phase = rng.random((3, 3)) * 6
        channels = [0.5 + 0.5 * np.sin(phase[c, 0] + 7 * x * phase[c, 1] + 5 * y * phase[c, 2]) for c in range(3)]
        return np.stack(channels, -1)[None].astype(np.float32)
    points = rng.random(shape, dtype=np.float32) * 400 + 50  # a cloud of points anywhere in a photo
    if seed % 2:  # an ellipse, as a face's outline
        t = np.linspace(0, 2 * np.pi, shape[1], endpoint=False)
        points[0] = np.stack([300 + 80 * np.cos(t), 250 + 110 * np.sin(t)], -1) + rng.normal(0, 3, (shape[1], 2))
    return points.astype(np.float32)


def check(tflite_path: str, onnx_path: str) -> None:
    """Fail when onnxruntime's outputs differ from TensorFlow Lite's by more than ``TOLERANCE``."""
    # the build environment's libraries (TensorFlow, onnxruntime): imported where used
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=tflite_path)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    onnx_outputs = [o.name for o in session.get_outputs()]
    worst = 0.0
    for seed in range(CHECKS):
        x = _inputs(tuple(inp["shape"]), seed)
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        got = dict(zip(onnx_outputs, session.run(None, {session.get_inputs()[0].name: x})))
        for out in interpreter.get_output_details():
            want = interpreter.get_tensor(out["index"])
            diff = float(np.abs(got[out["name"]].reshape(want.shape) - want).max())
            scale = max(1.0, float(np.abs(want).max()))
            worst = max(worst, diff / scale)
            if diff > TOLERANCE * scale:
                raise SystemExit(f"{out['name']} differs from TFLite by {diff:.3g} on input {seed} "
                                 f"(allowed {TOLERANCE * scale:.3g})")
    print(f"parity with TFLite on {CHECKS} inputs: largest difference {worst:.3g} of the output's scale")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    convert(sys.argv[1], sys.argv[2], int(sys.argv[3]))
