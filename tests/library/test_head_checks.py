"""A projection head is code facecli runs: what it may do is checked when it is loaded (issue 24).

Each head here is a real ONNX file with its sha256 sidecar, as `facecli tune` writes them, built to do one thing a
head must not: collapse everyone together, give other than unit vectors, NaN, read another file through external
data, loop, or carry taus that would name strangers; and how a head's measurements calibrate identify's tau, with
the tail model of its smallest impostor distances (issue 27) or, written before it, its quantiles alone."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from facecli import decisions
from facecli.calibration import impostor_probability, largest_gallery, tau_for
from facecli.errors import FaceCliError, ModelError
from facecli.heads import FORMAT, INPUT, METADATA_KEY, OUTPUT, load_head, sidecar
from facecli.models import pipeline_spec
from facecli.sources import sha256_bytes
from facecli.tune import init_head
from facecli.tune.export import export_head

onnx = pytest.importorskip("onnx", reason="writing heads needs the [tune] extra")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

DIM = 128
METADATA = {"base_model": "sface", "input_dim": DIM, "output_dim": DIM, "default_tau": 1.2,
            "impostor": {"p": [1e-4, 1e-3, 1e-2, 0.1], "d": [0.6, 0.8, 1.0, 1.3]}}


def _write(folder: Path, name: str, nodes: list, inits: list, metadata: dict | None = None,
           graph_inputs: list | None = None) -> Path:
    graph = helper.make_graph(nodes, "head", graph_inputs or [
        helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", DIM])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", DIM])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {METADATA_KEY: json.dumps({"format": FORMAT, **(metadata or METADATA)})})
    data = model.SerializeToString()
    path = folder / name
    path.write_bytes(data)
    sidecar(path).write_text(f"{sha256_bytes(data)}  {name}\n")
    return path


def _linear(folder: Path, name: str, w: np.ndarray, b: np.ndarray, normalise: bool = True, **kw) -> Path:
    nodes = [helper.make_node("MatMul", [INPUT, "w"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["z" if normalise else OUTPUT])]
    if normalise:
        nodes += [helper.make_node("ReduceL2", ["z"], ["norm"], axes=[1], keepdims=1),
                  helper.make_node("Div", ["z", "norm"], [OUTPUT])]
    inits = [numpy_helper.from_array(w.astype(np.float32), "w"), numpy_helper.from_array(b.astype(np.float32), "b")]
    return _write(folder, name, nodes, inits, **kw)


def test_a_head_as_tune_writes_it_loads(tmp_path):
    path = tmp_path / "good.onnx"
    export_head(init_head("linear", DIM), METADATA, path)
    assert load_head(path).out_dim == DIM


def test_a_head_that_maps_everyone_to_one_point_is_refused(tmp_path):
    path = _linear(tmp_path, "collapse.onnx", np.zeros((DIM, DIM)), np.ones(DIM))
    with pytest.raises(ModelError, match="collapses distinct faces together"):
        load_head(path)


def test_a_head_whose_outputs_are_not_unit_vectors_is_refused(tmp_path):
    path = _linear(tmp_path, "scaled.onnx", np.eye(DIM) * 0.001, np.zeros(DIM), normalise=False)
    with pytest.raises(ModelError, match="not unit vectors"):
        load_head(path)


def test_a_head_with_nan_outputs_is_refused_in_one_line(tmp_path):
    w = np.eye(DIM)
    w[0, 0] = np.nan
    with pytest.raises(ModelError, match="not finite"):
        load_head(_linear(tmp_path, "nan.onnx", w, np.zeros(DIM)))


TAIL = {"u": 1.3, "p_u": 0.01, "xi": -0.08, "sigma": 0.07, "reach_p": 2e-5, "trusted": True, "people": 500}


def test_a_head_written_before_tail_models_calibrates_from_its_quantiles(tmp_path):
    head = load_head(_linear(tmp_path, "old.onnx", np.eye(DIM), np.zeros(DIM)))
    old = head.calibration(pipeline_spec("sface"))
    assert largest_gallery(old) == 100  # its rarest quantile, 1e-4, at FPIR 1 %
    # the base model's ambiguity gap was measured on its distances, not the head's: none through a head
    assert decisions.min_gap("sface") > 0 and decisions.min_gap("sface", head=head) == 0
    assert tau_for(old, 1, 0.1) == pytest.approx(1.3) and 0.6 < tau_for(old, 100) < 0.8
    with pytest.raises(FaceCliError, match="rarer than 1 in 1e"):
        tau_for(old, 101)


def test_a_heads_tail_model_calibrates_below_its_threshold_as_far_as_its_reach(tmp_path):
    path = _linear(tmp_path, "tail.onnx", np.eye(DIM), np.zeros(DIM),
                   metadata=METADATA | {"impostor": {**METADATA["impostor"], "tail": TAIL}})
    spec = load_head(path).calibration(pipeline_spec("sface"))
    reach = largest_gallery(spec)
    assert reach == 502 and tau_for(spec, 1, 0.1) == pytest.approx(1.3)  # above p_u: the quantiles
    for k in (30, 300, reach):
        wanted = impostor_probability(0.01, k)  # the model's quantile, written out
        assert tau_for(spec, k) == pytest.approx(1.3 - 0.07 / -0.08 * ((0.01 / wanted) ** -0.08 - 1))
    with pytest.raises(FaceCliError, match=f"calibrated for galleries of up to {reach} people .* 500 validation"):
        tau_for(spec, reach + 1)
    untrusted = dataclasses.replace(spec, impostor={**spec.impostor, "tail": {**TAIL, "trusted": False}})
    assert largest_gallery(untrusted) == 0
    with pytest.raises(FaceCliError, match="up to 0 people"):
        tau_for(untrusted, 2)


@pytest.mark.parametrize(("change", "words"), [
    ({"default_tau": 3.99}, "1:1 tau 3.99"),
    ({"impostor": {"p": [1e-4, 1e-3, 1e-2, 0.1], "d": [0.6, 0.8, 1.0, 3.0]}}, "impostor quantiles"),
    ({"impostor": {"p": [0.1, 0.01], "d": [0.6, 0.8]}}, "impostor quantiles"),
    ({"impostor": {**METADATA["impostor"], "tail": TAIL | {"u": 2.5}}}, "tail model's threshold"),
    ({"impostor": {**METADATA["impostor"], "tail": TAIL | {"reach_p": 0.5}}}, "tail model's reach"),
    ({"impostor": {**METADATA["impostor"], "tail": TAIL | {"sigma": float("nan")}}}, "tail model is not"),
    ({"impostor": {**METADATA["impostor"], "tail": "heavy"}}, "tail model is not"),
])
def test_taus_past_what_tau_accepts_are_refused(tmp_path, change, words):
    path = _linear(tmp_path, "taus.onnx", np.eye(DIM), np.zeros(DIM), metadata=METADATA | change)
    with pytest.raises(ModelError, match=words):
        load_head(path)


def test_external_data_is_refused_and_the_file_it_names_never_read(tmp_path, monkeypatch):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(DIM * DIM, dtype=np.float32).tobytes())
    os.utime(secret, (0, 0))
    w = numpy_helper.from_array(np.zeros((DIM, DIM), np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="./secret.bin")
    b = numpy_helper.from_array(np.zeros(DIM, np.float32), "b")
    nodes = [helper.make_node("MatMul", [INPUT, "w"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["z"]),
             helper.make_node("ReduceL2", ["z"], ["norm"], axes=[1], keepdims=1),
             helper.make_node("Div", ["z", "norm"], [OUTPUT])]
    path = _write(tmp_path, "external.onnx", nodes, [w, b])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match="reads data from other files"):
        load_head(path)
    assert secret.stat().st_atime == 0


def test_a_head_with_a_loop_is_refused(tmp_path):
    body = helper.make_graph([helper.make_node("Identity", ["cond"], ["cond_out"])], "body",
                             [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                              helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                             [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])])
    nodes = [helper.make_node("Loop", ["", "forever"], [], body=body),
             helper.make_node("ReduceL2", [INPUT], ["norm"], axes=[1], keepdims=1),
             helper.make_node("Div", [INPUT, "norm"], [OUTPUT])]
    path = _write(tmp_path, "loop.onnx", nodes, [numpy_helper.from_array(np.array(True), "forever")])
    with pytest.raises(ModelError, match="operators a head never needs: Loop"):
        load_head(path)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_head_path_that_is_no_file_is_refused_at_once(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "head.onnx"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    start = time.monotonic()
    with pytest.raises(ModelError, match="not a regular file"):
        load_head(path, expected_sha256="0" * 64)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("change", [{"input_dim": "abc"}, {"output_dim": [1]}, {"base_model": 3}])
def test_metadata_that_tune_never_writes_is_refused_in_one_line(tmp_path, change):
    path = _linear(tmp_path, "odd.onnx", np.eye(DIM), np.zeros(DIM), metadata=METADATA | change)
    with pytest.raises(ModelError, match="not what facecli writes"):
        load_head(path)
