"""Projection heads at run time: the head file's format, and a head checked by sha256 and run by onnxruntime on
base embeddings (``facecli tune`` trains and writes them; everything else only reads them, through here).

A gallery keeps the base model's embeddings; a head maps them, and every
probe, at match time, so adding, changing or removing a head needs no
re-enrollment. The file is read once: its bytes are hashed and the same
bytes are loaded, trusted only when their sha256 matches the sidecar
(``HEAD.sha256``, written by ``export_head``) or the sha256 the caller
expects (e.g. the one a gallery recorded).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecli.decisions import LOOSE_TAU
from facecli.errors import ModelError
from facecli.matching import sq_distances
from facecli.onnxgraph import NotOnnx, read_graph, refused
from facecli.private import read_regular
from facecli.runtime import onnxruntime
from facecli.sources import sha256_bytes
from facecli.values import HeadRecord

#: the head file's format: one ONNX graph from ``INPUT`` (base unit embeddings, (N, D)) to ``OUTPUT`` (unit rows),
#: with its metadata as one JSON string under ``METADATA_KEY``, and its sha256 in a sidecar (``sidecar``)
METADATA_KEY = "facecli"
FORMAT = "facecli-head/1"
INPUT, OUTPUT = "embedding", "head_embedding"
#: what a head's graph may run: the layers ``facecli tune`` writes (``tune.export``), nothing else
OPERATORS = frozenset({"MatMul", "Add", "Relu", "ReduceL2", "Div"})
#: the largest head file read (a two-layer 640 x 640 head is 3.3 MB)
MAX_BYTES = 64 << 20
#: the largest head a gallery keeps (``Gallery.set_head``): the largest ``facecli tune`` writes, two layers on
#: fusion's 640-d embeddings (640 x 1280 x 640), is 6.6 MB
STORED_MAX = 16 << 20
#: distinct inputs a head is tried on when loaded; their outputs must be unit vectors that stay apart
PROBES, PROBE_SEED = 64, 20261206
#: the median squared distance between the probes' outputs below which a head is taken to collapse faces
#: together (distinct unit vectors in 128-640 dimensions sit near 2; a trained head keeps them near 2 too)
COLLAPSED = 0.5
#: what a head's metadata must hold for facecli to use it
REQUIRED = ("base_model", "input_dim", "output_dim", "impostor", "default_tau")


def sidecar(path: Path) -> Path:
    """Where a head's sha256 is written: ``HEAD.sha256``, in ``sha256sum`` format."""
    return Path(path).with_name(Path(path).name + ".sha256")


@dataclass
class LoadedHead:
    """A head file, verified and loaded: ``apply`` maps base embeddings to the head's unit embeddings."""

    path: Path  # absolute: where it was found
    sha256: str
    metadata: dict[str, Any]
    session: Any = field(repr=False, default=None)  # onnxruntime's, on the CPU: a matrix product or two
    data: bytes = field(repr=False, default=b"")  # the file's bytes: what a gallery keeps (``record``)
    kept_in: str | None = None  # the gallery it was read from, when it is the copy a gallery keeps

    @property
    def base_model(self) -> str:
        return self.metadata["base_model"]

    @property
    def in_dim(self) -> int:
        return int(self.metadata["input_dim"])

    @property
    def out_dim(self) -> int:
        return int(self.metadata["output_dim"])

    @property
    def impostor(self) -> dict:
        """The head's impostor-distance quantiles, in the manifest's format (``calibration.tau_for``)."""
        return self.metadata["impostor"]

    @property
    def default_tau(self) -> float:
        """The head's 1:1 tau: the best balanced accuracy on its validation people's pairs."""
        return float(self.metadata["default_tau"])

    @property
    def label(self) -> str:
        """How messages name it: its path and the start of its sha256 (and where it was read from, when it is the
        copy a gallery keeps)."""
        kept = f", kept in {self.kept_in}" if self.kept_in else ""
        return f"{self.path} (sha256 {self.sha256[:12]}{kept})"

    @property
    def record(self) -> HeadRecord:
        """What a gallery used with this head records of it, its bytes included (``Gallery.set_head``)."""
        return HeadRecord(self.sha256, str(self.path), self.data or None)

    def check_model(self, model: str, dim: int) -> None:
        """Refuse embeddings of another model than the one the head was trained on."""
        if model != self.base_model or dim != self.in_dim:
            raise ModelError(str(self.path), f"this head was trained on {self.base_model} ({self.in_dim}-d) "
                                             f"embeddings; this run uses {model} ({dim}-d)")

    def apply(self, emb: np.ndarray) -> np.ndarray:
        """(N, in_dim) base unit embeddings -> (N, out_dim) float32 unit embeddings."""
        x = np.ascontiguousarray(np.atleast_2d(emb), dtype=np.float32)
        if x.shape[1] != self.in_dim:
            raise ModelError(str(self.path), f"expects {self.in_dim}-d embeddings, got {x.shape[1]}-d")
        if len(x) == 0:
            return np.empty((0, self.out_dim), dtype=np.float32)
        return self.session.run([OUTPUT], {INPUT: x})[0]

    def apply_templates(self, templates):
        """A gallery's ``TemplateMatrix`` with the head applied to every row (names and ids unchanged; its mean
        templates are then computed from the head's outputs)."""
        return dataclasses.replace(templates, matrix=self.apply(templates.matrix))

    def calibration(self, base_spec):
        """The base pipeline's ``PipelineSpec`` with the head's impostor quantiles and 1:1 tau, for ``tau_for``;
        without the base model's ambiguity gap, which was measured on its distances, not the head's."""
        return dataclasses.replace(base_spec, name=f"{base_spec.name} with the head {self.path.name}",
                                   impostor=self.impostor, default_tau=self.default_tau, ambiguity={})


def _session(data: bytes, path: Path) -> Any:
    ort = onnxruntime()

    ort.set_default_logger_severity(4)
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    try:
        return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(str(path), f"onnxruntime cannot load it: {str(exc).splitlines()[0]}") from None


def load_head(path: str | Path, expected_sha256: str | None = None) -> LoadedHead:
    """Open a head file after checking its sha256 against ``expected_sha256`` or else its sidecar file."""
    path = Path(path).absolute()
    data = read_regular(path, "head", MAX_BYTES, ModelError)  # once: the bytes hashed are the bytes run
    if expected_sha256 is None:
        side = sidecar(path)
        try:
            expected_sha256 = (side.read_text().split() or [""])[0]
        except (OSError, UnicodeDecodeError):
            raise ModelError(str(path), f"its sha256 file {side.name} is missing or unreadable (facecli tune "
                                        "writes it beside the head: keep the two together)") from None
        if not re.fullmatch(r"[0-9a-f]{64}", expected_sha256):
            raise ModelError(str(path), f"its sha256 file {side.name} does not hold a sha256")
    return head_from_bytes(data, path, expected_sha256)


def head_from_bytes(data: bytes, path: str | Path, expected_sha256: str, kept_in: str | None = None) -> LoadedHead:
    """A head from its file's bytes, checked against ``expected_sha256``: read from ``path``, or kept in the
    gallery ``kept_in`` (``path``: where its file was when the gallery was set to use it)."""
    path = Path(path)
    digest = sha256_bytes(data)
    if digest != expected_sha256:
        which = f"its copy kept in {kept_in} has" if kept_in else "has"
        raise ModelError(str(path), f"{which} sha256 {digest[:12]}, expected {expected_sha256[:12]} "
                                    "(modified, corrupt, or another head)")
    try:
        problem = refused(read_graph(data), OPERATORS)
    except NotOnnx:
        problem = "not an ONNX model"
    if problem is not None:
        raise ModelError(str(path), f"refusing this head: {problem}")
    session = _session(data, path)
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    try:
        metadata = json.loads(text) if text else {}
    except ValueError:
        metadata = {}
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT or not all(k in metadata for k in REQUIRED):
        raise ModelError(str(path), "not a head written by facecli tune (no facecli-head/1 metadata)")
    if not all(type(metadata[k]) is int and 1 <= metadata[k] <= 4096 for k in ("input_dim", "output_dim")) \
            or not isinstance(metadata["base_model"], str):
        raise ModelError(str(path), "refusing this head: its metadata's model and sizes are not what facecli writes")
    head = LoadedHead(path, digest, metadata, session, data, kept_in)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if [i.name for i in inputs] != [INPUT] or [o.name for o in outputs] != [OUTPUT] \
            or inputs[0].shape[1] != head.in_dim or outputs[0].shape[1] != head.out_dim:
        raise ModelError(str(path), "its graph does not map the sizes its metadata declares")
    problem = _calibration_problem(metadata) or _behaviour_problem(head)
    if problem is not None:
        raise ModelError(str(path), f"refusing this head: {problem}")
    return head


def _calibration_problem(metadata: dict[str, Any]) -> str | None:
    """Why a head's taus cannot be used (they decide who is named): its 1:1 tau must be one ``--tau`` accepts
    without ``--force``, its impostor quantiles increasing probabilities in (0, 1) with distances in [0, 2)."""
    tau = metadata.get("default_tau")
    if not isinstance(tau, (int, float)) or not 0 < tau < LOOSE_TAU:
        return f"its 1:1 tau {tau!r} is not between 0 and {LOOSE_TAU:g}"
    table = metadata.get("impostor")
    p = table.get("p") if isinstance(table, dict) else None
    d = table.get("d") if isinstance(table, dict) else None
    if not (isinstance(p, list) and isinstance(d, list) and len(p) == len(d) >= 2
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in p + d)):
        return "its impostor quantiles are not two lists of numbers"
    if not (all(0 < v < 1 for v in p) and all(a < b for a, b in zip(p, p[1:]))
            and all(0 <= v < LOOSE_TAU for v in d) and all(a <= b for a, b in zip(d, d[1:]))):
        return f"its impostor quantiles are not increasing probabilities in (0, 1) with distances in [0, {LOOSE_TAU:g})"
    return None if "tail" not in table else _tail_problem(table["tail"])


def _tail_problem(tail: object) -> str | None:
    """Why a head's tail model (``facecli.tune.tail``) cannot be used: a threshold ``u`` in (0, 2), ``p_u`` and the
    reach in (0, 1) with the reach no larger than ``p_u``, a positive scale and a shape in (-1, 1); a model trusted
    nowhere needs only ``p_u`` and its people."""
    if not isinstance(tail, dict) or not isinstance(tail.get("trusted"), bool) or type(tail.get("people")) is not int:
        return "its tail model is not what facecli tune writes"
    numbers = ("p_u", "reach_p") + (("u", "xi", "sigma") if tail["trusted"] else ())
    if not all(isinstance(tail.get(k), (int, float)) and not isinstance(tail.get(k), bool)
               and math.isfinite(tail[k]) for k in numbers):
        return "its tail model is not what facecli tune writes"
    if not (0 < tail["reach_p"] <= tail["p_u"] < 1):
        return "its tail model's reach is not a probability below its threshold's"
    if tail["trusted"] and not (0 < tail["u"] < LOOSE_TAU and tail["sigma"] > 0 and -1 < tail["xi"] < 1):
        return f"its tail model's threshold is not in (0, {LOOSE_TAU:g}), or its scale or shape is out of range"
    return None


def _behaviour_problem(head: LoadedHead) -> str | None:
    """Why a head's outputs cannot be compared by distance: tried on distinct unit vectors, they must be finite,
    of unit length, and stay apart (a head that maps every face to one point makes everyone the same person)."""
    x = np.random.default_rng(PROBE_SEED).standard_normal((PROBES, head.in_dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    try:
        y = head.apply(x)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        return f"it fails on ordinary inputs ({type(exc).__name__})"
    if not np.isfinite(y).all():
        return "its outputs are not finite numbers"
    if not np.allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-3):
        return "its outputs are not unit vectors"
    spread = float(np.median(sq_distances(y, y)[np.triu_indices(PROBES, 1)]))
    if spread < COLLAPSED:
        return f"it collapses distinct faces together (median squared distance {spread:.3f} between outputs)"
    return None
