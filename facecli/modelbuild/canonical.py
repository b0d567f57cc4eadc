"""Reproducible ONNX bytes from tf2onnx, shared by the converters (``convert_facenet.py``, ``convert_tflite.py``).

Loaded by path inside the build-only environment (onnx); facecli never imports it at run time.
"""

from __future__ import annotations

import hashlib


def canonicalise(graph) -> None:
    """Make the saved bytes reproducible, so the manifest can pin their sha256.

    tf2onnx deduplicates equal constants but keeps an arbitrary one of them
    and numbers folded constants in a run-dependent order. Naming every
    initializer by a hash of its content and ordering nodes topologically
    (ties by name) removes both sources of variation.
    """
    # the build environment's libraries (TensorFlow, onnx): imported where used, so that the
    # package imports this script without them
    from onnx import numpy_helper

    rename: dict[str, str] = {}
    unique = {}
    for init in graph.initializer:
        value = numpy_helper.to_array(init)
        digest = hashlib.sha256(f"{value.dtype}{value.shape}".encode() + value.tobytes())
        key = "c_" + digest.hexdigest()[:20]
        rename[init.name] = key
        if key not in unique:
            unique[key] = numpy_helper.from_array(value, key)
    inits = sorted(unique.values(), key=lambda t: t.name)
    del graph.initializer[:]
    graph.initializer.extend(inits)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]

    producers = {out: node.name for node in graph.node for out in node.output}
    pending = {node.name: {producers[i] for i in node.input if i in producers} for node in graph.node}
    by_name = {node.name: node for node in graph.node}
    ordered = []
    while pending:
        ready = sorted(name for name, deps in pending.items() if not deps)
        if not ready:
            raise SystemExit("graph has a cycle")
        for name in ready:
            del pending[name]
            ordered.append(by_name[name])
        for deps in pending.values():
            deps.difference_update(ready)
    del graph.node[:]
    graph.node.extend(ordered)


def name_by_structure(graph) -> None:
    """Name every node and inner tensor by a hash of what it computes (its operator, attributes and inputs, back
    to the graph's inputs and content-named constants), then order the nodes again; run after ``canonicalise``,
    whose order has every node after the nodes it reads.

    tf2onnx's duplicate merging keeps one of two equal nodes at random, so the survivor's name, which
    ``canonicalise`` keeps, differs from build to build; a name that says what a node computes is the same on
    every build. The graph's inputs and outputs keep their names.
    """
    graph_io = {v.name for v in list(graph.input) + list(graph.output)}
    tensors: dict[str, str] = {}
    seen = set()
    for node in graph.node:
        # a constant (named by its content), a graph input, or an omitted optional input ("") keeps its name
        inputs = [tensors.get(name, name) for name in node.input]
        parts = [node.domain, node.op_type, *(a.SerializeToString().hex() for a in node.attribute), *inputs]
        node.name = "n_" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]
        if node.name in seen:
            raise SystemExit(f"two {node.op_type} nodes compute the same thing: the graph cannot be named by content")
        seen.add(node.name)
        for i, out in enumerate(node.output):
            if out and out not in graph_io:
                tensors[out] = f"{node.name}:{i}"
        node.input[:] = inputs
        node.output[:] = [tensors.get(out, out) for out in node.output]
    canonicalise(graph)
