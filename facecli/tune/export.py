"""Writing a head as an ONNX graph, with its metadata and a sha256 sidecar.

The graph is MatMul + Add (bias) [+ Relu + MatMul + Add] then ReduceL2 and
Div (unit rows), opset 17, float32; its input ``embedding`` is the base
model's (N, D) unit embeddings. The metadata (base model, sizes, loss,
margin, mining, epochs, the data set's content hash, validation figures,
the impostor-distance quantiles ``calibration.tau_for`` reads) is one JSON
string under the key ``facecli``. Building the graph needs the ``onnx``
package (the ``[tune]`` extra); loading it needs only onnxruntime, which
every command has.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from facecli.errors import FaceCliError
from facecli.extras import install_hint
from facecli.heads import FORMAT, INPUT, METADATA_KEY, OUTPUT, sidecar
from facecli.private import write_private
from facecli.sources import sha256_bytes
from facecli.tune.head import Head

OPSET, IR_VERSION = 17, 8


def require_onnx() -> None:
    """Refuse at once, saying how to install it, when the onnx package that writes heads is missing."""
    try:
        # onnx: optional (the [tune] extra), loaded only to write a head
        import onnx  # noqa: F401
    except ImportError:
        raise FaceCliError("tune", f"writing a head needs the onnx package: {install_hint('tune')}") from None


def head_graph(head: Head, metadata: dict):
    """The head as an ``onnx.ModelProto``."""
    require_onnx()
    # onnx: optional (the [tune] extra), loaded only to write a head
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    two_layer = head.kind == "two-layer"
    names = ["w1", "b1", "w2", "b2"] if two_layer else ["w1", "b1"]
    inits = [numpy_helper.from_array(np.ascontiguousarray(p, dtype=np.float32), n) for n, p in zip(names, head.params)]
    nodes = [helper.make_node("MatMul", [INPUT, "w1"], ["mm1"]), helper.make_node("Add", ["mm1", "b1"], ["z1"])]
    last = "z1"
    if two_layer:
        nodes += [helper.make_node("Relu", ["z1"], ["r1"]), helper.make_node("MatMul", ["r1", "w2"], ["mm2"]),
                  helper.make_node("Add", ["mm2", "b2"], ["z2"])]
        last = "z2"
    nodes += [helper.make_node("ReduceL2", [last], ["norm"], axes=[1], keepdims=1),
              helper.make_node("Div", [last, "norm"], [OUTPUT])]
    graph = helper.make_graph(
        nodes, "facecli_head", [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", head.in_dim])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", head.out_dim])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="facecli tune",
                              doc_string=f"{head.kind} projection head on {metadata.get('base_model')} embeddings")
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {METADATA_KEY: json.dumps({"format": FORMAT, **metadata}, sort_keys=True)})
    onnx.checker.check_model(model)
    return model


def export_head(head: Head, metadata: dict, path: Path) -> str:
    """Write the head to ``path`` and its sha256 beside it (``path``.sha256); returns the sha256.

    The bytes depend only on the weights and the metadata, so the same
    training gives the same file and the same sha256. Both files are written
    as the gallery is (``private.write_private``: 0600, atomically, never
    through a link): the weights were learnt from people's faces.
    """
    path = Path(path)
    data = head_graph(head, metadata).SerializeToString()
    digest = sha256_bytes(data)
    write_private(path, data)
    write_private(sidecar(path), f"{digest}  {path.name}\n".encode())
    return digest
