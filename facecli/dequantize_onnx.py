"""Turn an OpenCV Zoo int8 block-quantised ONNX graph into a plain float32 one for onnxruntime.

Runs as a script inside the build-only virtual environment (it needs the
``onnx`` package); facecli never imports it. Usage:

    python dequantize_onnx.py SRC.onnx DST.onnx [--dynamic-input AXES] [--dynamic-output AXES]

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
"""

from __future__ import annotations

import argparse


def _expand(values, shape: tuple[int, ...], axis: int, block: int):
    """A scale or zero point broadcast against the quantised tensor."""
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


def dequantize(src: str, dst: str, dynamic_input: list[int], dynamic_output: list[int]) -> None:
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
    args = parser.parse_args()
    dequantize(args.src, args.dst, args.dynamic_input, args.dynamic_output)
