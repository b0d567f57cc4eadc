"""Convert FaceNet's frozen TensorFlow graph to ONNX with a dynamic batch.

Runs as a script inside the build-only virtual environment (tensorflow-cpu,
tf2onnx, onnx); facecli never imports it, so TensorFlow stays out of the
runtime. Usage: python convert_facenet.py GRAPH.pb OUT.onnx OPSET
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

#: shared with the other converters; loaded by its path, since the build runs each script with its folder off
#: sys.path (facecli/models.py ``_RUN_SCRIPT``)
canonicalise = runpy.run_path(str(Path(__file__).with_name("canonical.py")))["canonicalise"]


def convert(graph_path: str, out_path: str, opset: int) -> None:
    # the build environment's libraries (TensorFlow, onnx): imported where used, so that the
    # package imports this script without them
    import onnx
    import tensorflow as tf
    import tf2onnx
    from onnx import numpy_helper

    graph_def = tf.compat.v1.GraphDef()
    with open(graph_path, "rb") as fh:
        graph_def.ParseFromString(fh.read())
    model, _ = tf2onnx.convert.from_graph_def(
        graph_def, input_names=["input:0"], output_names=["embeddings:0"], opset=opset
    )

    # The frozen graph bakes batch=1 into the shape constants of three Reshape
    # nodes (the final flatten and the bottleneck batch-norm round trip). Any
    # shape constant that starts with 1 feeds a Reshape of a per-sample tensor,
    # so its leading 1 becomes -1 (infer batch).
    reshape_shapes = {n.input[1] for n in model.graph.node if n.op_type == "Reshape"}
    patched = 0
    for init in model.graph.initializer:
        if init.name not in reshape_shapes:
            continue
        shape = numpy_helper.to_array(init).copy()
        if shape.ndim == 1 and shape.size >= 2 and shape[0] == 1:
            if (shape == -1).any():
                # [1, -1] flattens per sample: the feature size is known (1792).
                shape[shape == -1] = 1792
            shape[0] = -1
            init.CopyFrom(numpy_helper.from_array(shape, init.name))
            patched += 1
    if patched != 3:
        raise SystemExit(f"expected 3 batch-1 Reshape constants, patched {patched}")

    for value in list(model.graph.input) + list(model.graph.output):
        dim0 = value.type.tensor_type.shape.dim[0]
        dim0.ClearField("dim_value")
        dim0.dim_param = "batch"
    del model.graph.value_info[:]
    canonicalise(model.graph)
    model.producer_name = "facecli"
    onnx.checker.check_model(model)
    onnx.save(model, out_path)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    convert(sys.argv[1], sys.argv[2], int(sys.argv[3]))
