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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecli.errors import ModelError
from facecli.runtime import onnxruntime
from facecli.sources import sha256_bytes
from facecli.values import HeadRecord

#: the head file's format: one ONNX graph from ``INPUT`` (base unit embeddings, (N, D)) to ``OUTPUT`` (unit rows),
#: with its metadata as one JSON string under ``METADATA_KEY``, and its sha256 in a sidecar (``sidecar``)
METADATA_KEY = "facecli"
FORMAT = "facecli-head/1"
INPUT, OUTPUT = "embedding", "head_embedding"
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
        """How messages name it: its path and the start of its sha256."""
        return f"{self.path} (sha256 {self.sha256[:12]})"

    @property
    def record(self) -> HeadRecord:
        """What a gallery used with this head records of it (``Gallery.set_head``)."""
        return HeadRecord(self.sha256, str(self.path))

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
        """The base pipeline's ``PipelineSpec`` with the head's impostor quantiles and 1:1 tau, for ``tau_for``."""
        return dataclasses.replace(base_spec, name=f"{base_spec.name} with the head {self.path.name}",
                                   impostor=self.impostor, default_tau=self.default_tau)


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
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(str(path), f"cannot read the head: {exc.strerror or exc}") from None
    digest = sha256_bytes(data)
    if expected_sha256 is None:
        side = sidecar(path)
        try:
            expected_sha256 = (side.read_text().split() or [""])[0]
        except (OSError, UnicodeDecodeError):
            raise ModelError(str(path), f"its sha256 file {side.name} is missing or unreadable (facecli tune "
                                        "writes it beside the head: keep the two together)") from None
        if not re.fullmatch(r"[0-9a-f]{64}", expected_sha256):
            raise ModelError(str(path), f"its sha256 file {side.name} does not hold a sha256")
    if digest != expected_sha256:
        raise ModelError(str(path), f"has sha256 {digest[:12]}, expected {expected_sha256[:12]} "
                                    "(modified, corrupt, or another head)")
    session = _session(data, path)
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    try:
        metadata = json.loads(text) if text else {}
    except ValueError:
        metadata = {}
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT or not all(k in metadata for k in REQUIRED):
        raise ModelError(str(path), "not a head written by facecli tune (no facecli-head/1 metadata)")
    head = LoadedHead(path, digest, metadata, session)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if [i.name for i in inputs] != [INPUT] or [o.name for o in outputs] != [OUTPUT] \
            or inputs[0].shape[1] != head.in_dim or outputs[0].shape[1] != head.out_dim:
        raise ModelError(str(path), "its graph does not map the sizes its metadata declares")
    return head
