"""Turn an OpenCV Zoo int8 block-quantised ONNX graph into a plain float32 one for onnxruntime.

Runs as a script inside the build-only virtual environment (it needs the
``onnx`` package); facecli never imports it. Usage:

    python dequantize_onnx.py SRC.onnx DST.onnx [--dynamic-input AXES] [--dynamic-output AXES] [--prelu-affine]

Why: the ``*_int8bq.onnx`` files of YuNet and SFace run in OpenCV's DNN module
but not as they are in onnxruntime 1.31:

- YuNet's bias DequantizeLinear nodes carry a ``block_size`` with a single
  (per-tensor) scale, which onnxruntime rejects ("block_size must be 0 for
  per-tensor quantization");
- SFace lists 145 initializers and 29 dangling names among its graph inputs,
  which onnxruntime then asks the caller to feed.

OpenCV dequantises the weights once when it loads the file. This script does
the same ahead of time: every DequantizeLinear (and weight Reshape) whose inputs
are all constants becomes a float32 initializer, computed exactly as the ONNX
operator defines it, ``(x - zero_point) * scale`` with the scale repeated over
each block, so no weight is dequantised again on every run. The fixed 640x640 (YuNet) and batch-1
(SFace) input shapes are made dynamic where every later node allows it.

``--prelu-affine`` rewrites every ``PRelu(x, a)`` (per-channel slopes) as
``a * x + (1 - a) * Relu(x)``, the same function. onnxruntime 1.31's CPU PRelu
kernel broadcasts the slopes element by element (7x slower than the four ops
it becomes here, measured on SFace's shapes) and keeps the graph out of the
blocked NCHWc layout, with a reorder before and after each convolution; the
rewritten ops are folded into that layout (per-channel scales become
depthwise 1x1 convolutions, the sum is fused), which makes SFace 2-2.4x
faster on one core with the same outputs to ~1e-6.
"""

from __future__ import annotations

import argparse


def _expand(values, shape: tuple[int, ...], axis: int, block: int):
    """A scale or zero point broadcast against the quantised tensor."""
    # the build environment's libraries (TensorFlow, onnx): imported where used, so that the
    # package imports this script without them
    import numpy as np

    if values.size == 1:
        return values.reshape(())
    if block:
        values = np.repeat(values, block, axis=axis)
        index = [slice(None)] * values.ndim
        index[axis] = slice(0, shape[axis])
        return values[tuple(index)]
    axes = [1] * len(shape)
    axes[axis] = -1
    return values.reshape(axes)


def prelu_affine(graph) -> None:
    """Replace each PRelu with a constant slope by ``a * x + (1 - a) * Relu(x)``, in place."""
    # the build environment's libraries (TensorFlow, onnx): imported where used, so that the
    # package imports this script without them
    import numpy as np
    from onnx import helper, numpy_helper

    consts = {t.name: t for t in graph.initializer}
    nodes = []
    for node in graph.node:
        if node.op_type != "PRelu" or node.input[1] not in consts:
            nodes.append(node)
            continue
        x, slope = node.input
        y = node.output[0]
        a = numpy_helper.to_array(consts[slope]).astype(np.float32)
        rest = f"{y}_one_minus_slope"
        graph.initializer.append(numpy_helper.from_array((1 - a).astype(np.float32), rest))
        nodes += [helper.make_node("Mul", [x, slope], [f"{y}_ax"], name=f"{node.name}_ax"),
                  helper.make_node("Relu", [x], [f"{y}_relu"], name=f"{node.name}_relu"),
                  helper.make_node("Mul", [f"{y}_relu", rest], [f"{y}_rest"], name=f"{node.name}_rest"),
                  helper.make_node("Add", [f"{y}_ax", f"{y}_rest"], [y], name=node.name)]
    del graph.node[:]
    graph.node.extend(nodes)


def dequantize(src: str, dst: str, dynamic_input: list[int], dynamic_output: list[int],
               affine: bool = False) -> None:
    # the build environment's libraries (TensorFlow, onnx): imported where used, so that the
    # package imports this script without them
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(src)
    graph = model.graph
    consts = {t.name: t for t in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(x in consts for x in node.input if x):
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            x = numpy_helper.to_array(consts[node.input[0]]).astype(np.float32)
            scale = numpy_helper.to_array(consts[node.input[1]]).astype(np.float32)
            zero = (numpy_helper.to_array(consts[node.input[2]]).astype(np.float32)
                    if len(node.input) > 2 and node.input[2] else np.zeros_like(scale))
            axis = attrs.get("axis", 1) % max(x.ndim, 1)
            block = attrs.get("block_size", 0)
            value = (x - _expand(zero, x.shape, axis, block)) * _expand(scale, x.shape, axis, block)
        elif node.op_type == "Reshape" and all(x in consts for x in node.input):
            value = numpy_helper.to_array(consts[node.input[0]]).reshape(numpy_helper.to_array(consts[node.input[1]]))
        else:
            kept.append(node)
            continue
        tensor = numpy_helper.from_array(np.asarray(value), node.output[0])
        graph.initializer.append(tensor)
        consts[tensor.name] = tensor
    del graph.node[:]
    graph.node.extend(kept)

    used = {x for n in graph.node for x in n.input} | {o.name for o in graph.output}
    live = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(live)
    names = {t.name for t in live}
    inputs = [i for i in graph.input if i.name not in names and i.name in used]
    del graph.input[:]
    graph.input.extend(inputs)

    if affine:
        prelu_affine(graph)
    for axis in dynamic_input:
        graph.input[0].type.tensor_type.shape.dim[axis].dim_param = f"in{axis}"
    for out in graph.output:
        for axis in dynamic_output:
            out.type.tensor_type.shape.dim[axis].dim_param = f"out{axis}"
    onnx.checker.check_model(model)
    onnx.save(model, dst)


def _axes(text: str) -> list[int]:
    return [int(a) for a in text.split(",") if a]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--dynamic-input", type=_axes, default=[])
    parser.add_argument("--dynamic-output", type=_axes, default=[])
    parser.add_argument("--prelu-affine", action="store_true", help="rewrite PRelu as a*x + (1-a)*Relu(x)")
    args = parser.parse_args()
    dequantize(args.src, args.dst, args.dynamic_input, args.dynamic_output, args.prelu_affine)
