"""onnxruntime sessions: one per model, the best execution provider available.

``auto`` tries TensorRT, then CUDA, then the CPU. onnxruntime-gpu lists the
GPU providers even on machines without CUDA; a provider that cannot start is
dropped by onnxruntime at session creation, so the providers a session really
uses are read back from it, never assumed.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from facecli.errors import BadValue, FaceCliError, ModelError, OutOfMemory
from facecli.models import MAX_MODEL_BYTES, ModelSpec, verified_bytes, verified_path
from facecli.paths import cache_dir
from facecli.private import check_private, make_private_dir, private_folder, publish, read_regular
from facecli.sources import sha256_bytes, sha256_file
from facecli.stamps import file_stamp, read_json, write_json

DEVICES = ("auto", "cpu", "cuda", "tensorrt")
_PROVIDER = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def onnxruntime() -> Any:
    """onnxruntime, imported with its telemetry off.

    onnxruntime 1.31 records telemetry events (a device id, process paths)
    under ~/.cache/Microsoft/DeveloperTools at import, whatever the code does
    next; ``ORT_DISABLE_TELEMETRY`` set before the import is the only switch
    that stops it, and ``disable_telemetry_events`` covers a process that
    imported onnxruntime before facecli. Every use of onnxruntime goes through
    here. Imported on first use: it takes a quarter of a second.
    """
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    # onnxruntime: loaded with the first model
    import onnxruntime as ort

    ort.disable_telemetry_events()
    return ort


def _providers(device: str, available: list[str]) -> list[Any]:
    if device not in DEVICES:
        raise BadValue("device", device, f"unknown device (choose from {', '.join(DEVICES)})")
    order = {"auto": ["tensorrt", "cuda", "cpu"], "tensorrt": ["tensorrt", "cuda", "cpu"],
             "cuda": ["cuda", "cpu"], "cpu": ["cpu"]}[device]
    wanted = [_PROVIDER[d] for d in order if _PROVIDER[d] in available]
    if device != "auto" and device != "cpu" and _PROVIDER[device] not in available:
        raise BadValue("device", device, f"this onnxruntime build has no {_PROVIDER[device]}")
    result: list[Any] = []
    for name in wanted:
        if name == "TensorrtExecutionProvider":
            # Engines take minutes to build: cache them so only the first run pays.
            engines = cache_dir() / "trt-engines"
            engines.mkdir(parents=True, exist_ok=True)
            result.append((name, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(engines),
                                  "trt_fp16_enable": False}))
        else:
            result.append(name)
    return result


@cache
def gpu_runtime_present() -> bool:
    """Whether the CUDA 13 / cuDNN 9 libraries onnxruntime-gpu needs can be loaded.

    onnxruntime-gpu lists its GPU providers even where their libraries are
    missing; asking for them then costs a failed load and an error log per
    session. Checking once for the libraries keeps the CPU path quiet and fast.
    (A machine with a CUDA toolkit but no cuBLAS or cuDNN counts as no GPU.)
    """
    for lib in ("libcudart.so.13", "libcublasLt.so.13", "libcudnn.so.9"):
        try:
            ctypes.CDLL(lib)
        except OSError:
            return False
    return True


def runs_on_cpu(device: str) -> bool:
    """Whether sessions created for ``device`` run on the CPU: ``cpu``, or ``auto`` with no usable GPU provider."""
    if device != "auto":
        return device == "cpu"
    ort = onnxruntime()

    return not gpu_runtime_present() or not {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(
        ort.get_available_providers())


@cache
def _cpu_tag() -> str:
    """Names this CPU's instruction set, which a CPU-optimised graph depends on."""
    flags = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        flags = next((line for line in fh if line.startswith("flags")), "")
    return hashlib.sha256(f"{platform.machine()} {flags}".encode()).hexdigest()[:12]


def _optimised_copy(key: str) -> tuple[Path, bytes | None]:
    """Where the CPU-optimised graph of a model is cached, and its bytes when they are there intact.

    Optimising FaceNet's graph at full level takes ~0.2 s per process; the
    result depends on this onnxruntime and this CPU (NCHWc layouts), so it
    is cached per (model, onnxruntime version, CPU). Nothing vouches for it
    as the manifest vouches for the model, so it is checked on every load:
    in a cache you alone can change, yours and private, exactly as written
    (size, times, inode), and its bytes, read once, with the content hash
    recorded when it was written; otherwise it is rebuilt.
    """
    ort = onnxruntime()

    target = cache_dir() / "ort-optimised" / f"{key}-ort{ort.__version__}-{_cpu_tag()}.onnx"
    try:
        if not private_folder(target.parent):
            return target, None
        check_private(target, "cached graph")
        check_private(target.with_suffix(".stamp"), "cached graph's stamp")
        stamp = read_json(target.with_suffix(".stamp"))
        if not (isinstance(stamp, dict) and stamp.get("stat") == file_stamp(target)):
            return target, None
        data = read_regular(target, "cached graph", MAX_MODEL_BYTES)
        return target, data if stamp.get("sha256") == sha256_bytes(data) else None
    except (OSError, FaceCliError):
        return target, None


def create_session(model: ModelSpec, device: str = "auto", threads: int = 0, optimise: bool = False) -> Any:
    """An InferenceSession for ``model`` on ``device``; ``session.get_providers()[0]`` is the one used.

    onnxruntime gets bytes, never a path: the model file's, read once and
    checked against the manifest (``models.verified_bytes``). With
    ``optimise`` a CPU session loads instead the optimised copy in the cache
    (checked as ``_optimised_copy`` says), writing it on first use.
    """
    ort = onnxruntime()

    # onnxruntime's own log (multi-line, with colour codes) stays quiet: facecli reports failures itself
    ort.set_default_logger_severity(4)
    available = ort.get_available_providers()
    if device == "auto" and not gpu_runtime_present():
        device = "cpu"
    if device in ("cuda", "tensorrt") and not gpu_runtime_present():
        raise BadValue("device", device, "needs CUDA 13 and cuDNN 9 (libcudart.so.13, libcublasLt.so.13, "
                                         "libcudnn.so.9), which this machine does not have")
    providers = _providers(device, available)

    opts = ort.SessionOptions()
    # Full graph optimisation: fuses Conv+BN+ReLU, worth ~10 % on FaceNet, and
    # costs well under a second at session creation.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Intra-op threads = cores (0 lets onnxruntime pick physical cores); one
    # inter-op thread because these graphs are chains, not parallel branches.
    opts.intra_op_num_threads = threads or env_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # The arena and memory patterns stay on: batches repeat the same shapes,
    # so buffers are reused instead of reallocated per call.
    opts.enable_cpu_mem_arena = True
    opts.enable_mem_pattern = True
    opts.log_severity_level = 4
    data, written, optimised = None, None, None
    if optimise and providers == ["CPUExecutionProvider"]:
        optimised, data = _optimised_copy(model.sha256[:16])
        if data is not None:
            # the model file itself is not loaded, but a modified or missing one is still refused
            verified_path(model.name)
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # done already
        elif private_folder(cache_dir()) or not cache_dir().exists():
            with contextlib.suppress(OSError):
                make_private_dir(optimised.parent)
                fd, name = tempfile.mkstemp(prefix=f".{optimised.name}.", suffix=".tmp", dir=optimised.parent)
                os.close(fd)
                written = Path(name)
                opts.optimized_model_filepath = str(written)
    if data is None:
        data = verified_bytes(model)
    try:
        try:
            session = ort.InferenceSession(data, sess_options=opts, providers=providers)
        except Exception:  # onnxruntime raises its own untyped errors
            if written is None:
                raise
            # saving the optimised copy failed (a full disk?): load without it, the cache only saves time
            written.unlink(missing_ok=True)
            written = None
            opts.optimized_model_filepath = ""
            session = ort.InferenceSession(data, sess_options=opts, providers=providers)
    except Exception as exc:
        reason = str(exc).splitlines()[0]
        # an allocation that failed says nothing about the file: it may load once other work lets go of memory
        error = OutOfMemory if "bad_alloc" in reason else ModelError
        raise error(str(model.path), f"onnxruntime cannot load it: {reason}") from None
    if written is not None:
        with contextlib.suppress(OSError, FaceCliError):  # a cache not written costs time, not correctness
            publish(written, optimised)
            write_json(optimised.with_suffix(".stamp"), {"stat": file_stamp(optimised),
                                                        "sha256": sha256_file(optimised)})
        written.unlink(missing_ok=True)
    if device in ("cuda", "tensorrt") and session.get_providers()[0] != _PROVIDER[device]:
        raise BadValue("device", device, f"{_PROVIDER[device]} failed to start (CUDA 13 and cuDNN 9 are required)")
    return session


def provider_name(session: Any) -> str:
    """Short name of the provider a session runs on: tensorrt, cuda or cpu."""
    first = session.get_providers()[0]
    return {v: k for k, v in _PROVIDER.items()}.get(first, first)


def env_threads() -> int:
    """``FACECLI_THREADS``: the threads each network may use (0 or unset: onnxruntime's choice, the cores), for a
    machine shared with other work."""
    value = os.environ.get("FACECLI_THREADS", "0")
    if not value.isdigit() or int(value) > 1024:
        raise FaceCliError("FACECLI_THREADS", f"{value!r} is not a number of threads between 0 and 1024")
    return int(value)
