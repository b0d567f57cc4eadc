"""What an ONNX file asks onnxruntime to do, read from its bytes before it is loaded: its operators, and whether it
reads data from other files.

A model file is code that onnxruntime runs: a graph may loop forever
(``Loop``), call custom functions, or name "external data" files that
onnxruntime then reads (``./secret.bin``: any file the user can read, printed
back as an embedding). facecli's own models are pinned by sha256; a
projection head is a file anyone can hand over, so its graph is checked
here against the few operators a head needs. Only the protobuf wire format is
read (a dozen fields), so checking needs neither the onnx package nor a
session.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

# field numbers of onnx.proto3
_MODEL_GRAPH, _MODEL_FUNCTIONS, _MODEL_TRAINING = 7, 25, 20
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE = 1, 5, 15
_NODE_OP_TYPE, _NODE_DOMAIN, _NODE_ATTRIBUTE = 4, 7, 5
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 13, 14
_EXTERNAL = 1


class NotOnnx(ValueError):
    """The bytes are not a protobuf ONNX model."""


@dataclass
class Graph:
    """What a model's graph holds, as far as deciding whether to run it goes."""

    operators: list[tuple[str, str]] = field(default_factory=list)  # (domain, op_type) per node
    external_data: bool = False  # an initializer reads its values from another file
    functions: bool = False  # model-local functions (custom operators written as graphs)
    training: bool = False
    sparse: bool = False


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise NotOnnx("truncated varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            yield number, wire, value
        elif wire == 2:
            size, i = _varint(data, i)
            if i + size > len(data):
                raise NotOnnx("truncated field")
            yield number, wire, data[i:i + size]
            i += size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            yield number, wire, data[i:i + width]
            i += width
        else:
            raise NotOnnx(f"wire type {wire}")


def read_graph(data: bytes) -> Graph:
    """The operators and outside references of an ONNX model's main graph."""
    graph = Graph()
    found = False
    for number, wire, value in _fields(data):
        if number == _MODEL_GRAPH and wire == 2:
            found = True
            for g_number, g_wire, g_value in _fields(value):  # type: ignore[arg-type]
                if g_number == _GRAPH_NODE and g_wire == 2:
                    op = domain = ""
                    for n_number, n_wire, n_value in _fields(g_value):  # type: ignore[arg-type]
                        if n_number == _NODE_OP_TYPE and n_wire == 2:
                            op = n_value.decode(errors="replace")  # type: ignore[union-attr]
                        elif n_number == _NODE_DOMAIN and n_wire == 2:
                            domain = n_value.decode(errors="replace")  # type: ignore[union-attr]
                    graph.operators.append((domain, op))
                elif g_number == _GRAPH_INITIALIZER and g_wire == 2:
                    for t_number, _t_wire, t_value in _fields(g_value):  # type: ignore[arg-type]
                        if t_number == _TENSOR_EXTERNAL_DATA or (t_number == _TENSOR_DATA_LOCATION
                                                                 and t_value == _EXTERNAL):
                            graph.external_data = True
                elif g_number == _GRAPH_SPARSE:
                    graph.sparse = True
        elif number == _MODEL_FUNCTIONS:
            graph.functions = True
        elif number == _MODEL_TRAINING:
            graph.training = True
    if not found:
        raise NotOnnx("no graph")
    return graph


def refused(graph: Graph, allowed: frozenset[str]) -> str | None:
    """Why a graph may not run (an operator outside ``allowed`` of the standard domain, external data, functions),
    or None."""
    if graph.external_data:
        return "it reads data from other files (ONNX external data)"
    if graph.functions or graph.training or graph.sparse:
        return "it holds model-local functions, training steps or sparse initialisers"
    others = sorted({f"{d}.{op}" if d not in ("", "ai.onnx") else op for d, op in graph.operators
                     if d not in ("", "ai.onnx") or op not in allowed})
    if others:
        return f"it runs operators a head never needs: {', '.join(others[:5])}"
    return None
