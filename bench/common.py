"""What the bench scripts share: where LFW and the photos are, timing, tables, results files, the machine.

Library logic (distances, search, thresholds, the LFW and open-set protocols) is not here: the
scripts call facecli for it. This module only holds what the scripts repeated among themselves.

- LFW: ``add_lfw(parser)`` gives every script ``--lfw DIR`` (LFW's folder: ``images/`` and
  ``pairs.txt``; the images folder itself is accepted too), its default from ``$FACECLI_LFW``, else
  ``shared/lfw`` beside the checkout (or beside the folder of worktrees); ``lfw_images``,
  ``lfw_pairs`` and ``lfw_subset`` read it.
- Timing: ``median_seconds`` (median of N calls), ``rate`` and ``paired_rates`` (items per second),
  ``timed_command`` (a whole command in a new process), ``abba`` (alternating orders).
- Output: ``table`` (a rich table), ``md_table`` (a Markdown header), ``pct``, and ``write_results``
  (JSON under bench/results/, git-ignored, with the ``machine()`` that measured it).
- Degraded photos: ``face_width`` (the median face on a sample), ``degraded_copies`` (copies made once
  under the cache, each by a function of the photo: small_faces.py, quality.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PHOTOS = ROOT / "tests" / "images"  # the face_recognition sdist photos (`make images`)
FACECLI = str(Path(sys.executable).with_name("facecli"))
LFW_ENV = "FACECLI_LFW"


# -- arguments ------------------------------------------------------------------------------------
def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser whose description is the first paragraph of the script's docstring."""
    first = (doc or "").strip().split("\n\n")[0]
    return argparse.ArgumentParser(description=" ".join(first.split()))


def default_lfw() -> Path:
    """``$FACECLI_LFW``, else ``shared/lfw`` beside the checkout or beside the folder of worktrees."""
    if os.environ.get(LFW_ENV):
        return Path(os.environ[LFW_ENV]).expanduser()
    return next((p / "shared" / "lfw" for p in ROOT.parents if (p / "shared" / "lfw").is_dir()),
                ROOT.parent / "shared" / "lfw")


def _lfw_dir(value: str) -> Path:
    path = Path(value).expanduser()
    if value.isdigit() and not path.exists():
        raise argparse.ArgumentTypeError(f"{value}: --lfw names LFW's folder (a number of images is --lfw-count)")
    return path


def add_lfw(ap: argparse.ArgumentParser, *aliases: str, images: bool = False, pairs: bool = False,
            count: int | None = None) -> None:
    """``--lfw DIR`` (and ``aliases``); with ``images`` / ``pairs``, ``--images`` / ``--pairs`` to point
    elsewhere than ``DIR/images`` / ``DIR/pairs.txt`` (``resolve_lfw`` fills them in); with ``count``,
    ``--lfw-count N`` (``add_lfw_count``) of that default."""
    ap.add_argument("--lfw", *aliases, dest="lfw", type=_lfw_dir, default=default_lfw(), metavar="DIR",
                    help=f"LFW's folder (images/<Name>/<Name>_NNNN.jpg, pairs.txt) or its images folder "
                         f"(default: ${LFW_ENV}, else shared/lfw beside the checkout: %(default)s)")
    if images:
        ap.add_argument("--images", type=Path, help="LFW's images folder (default: DIR/images)")
    if pairs:
        ap.add_argument("--pairs", type=Path, help="LFW's pairs.txt (default: DIR/pairs.txt)")
    if count is not None:
        add_lfw_count(ap, default=count)


def add_lfw_count(ap: argparse.ArgumentParser, *aliases: str, default: int = 300) -> None:
    ap.add_argument("--lfw-count", *aliases, dest="lfw_count", type=int, default=default, metavar="N",
                    help="LFW images, spread evenly over the sorted list (0: none; default %(default)s)")


def resolve_lfw(args: argparse.Namespace) -> argparse.Namespace:
    """Fill in ``args.images`` / ``args.pairs`` (where the parser has them and they were not given)."""
    if getattr(args, "images", "absent") is None:
        args.images = lfw_images(args.lfw)
    if getattr(args, "pairs", "absent") is None:
        args.pairs = lfw_pairs(args.lfw)
    return args


def lfw_images(lfw: Path) -> Path:
    """The images folder of LFW's folder (or the folder itself, when it is the images folder)."""
    return lfw / "images" if (lfw / "images").is_dir() else lfw


def lfw_pairs(lfw: Path) -> Path:
    return (lfw if (lfw / "images").is_dir() else lfw.parent) / "pairs.txt"


def lfw_subset(lfw: Path, count: int, required: bool = False) -> list[str]:
    """``count`` LFW images spread evenly over the sorted list (every 25th of 7,701 for 300); none when the
    folder is missing (``required``: an exit)."""
    everything = sorted(lfw_images(lfw).glob("*/*.jpg")) if count else []
    if required and not everything:
        sys.exit(f"{lfw}: no LFW images (give --lfw DIR or set ${LFW_ENV})")
    return [str(p) for p in everything[::max(1, len(everything) // max(count, 1))][:count]]


def photos() -> list[str]:
    """The face_recognition sdist photos of the tests (fetched and checked, as `make images` does)."""
    sys.path.insert(0, str(ROOT / "tests" / "helpers"))
    try:
        from fetch_images import fetch
    finally:
        sys.path.remove(str(ROOT / "tests" / "helpers"))
    return sorted(str(p) for p in fetch(PHOTOS).iterdir())


# -- timing ----------------------------------------------------------------------------------------
def once(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_seconds(fn: Callable[[], object], rounds: int, warmup: bool = True) -> float:
    """Median seconds of ``rounds`` calls, after one warm-up call."""
    if warmup:
        fn()
    return statistics.median(once(fn) for _ in range(rounds))


def rate(fn: Callable[[], object], items: int, seconds: float = 3.0) -> float:
    """Items per second: the median of 5 timings of repeated calls (about ``seconds`` in all) after a warm-up."""
    fn()
    reps = max(1, int(seconds / 5 / max(once(fn), 1e-4)))
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        samples.append(reps * items / (time.perf_counter() - start))
    return statistics.median(samples)


def paired_rates(a: Callable[[], object], b: Callable[[], object], items: int, rounds: int = 9
                 ) -> tuple[float, float]:
    """Items per second of ``a`` and of ``b``, timed in alternation (medians), so drift hits both alike."""
    a(), b()
    reps = max(1, int(0.4 / max(once(a), 1e-4)))
    rates: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for fn, out in ((a, rates[0]), (b, rates[1])):
            start = time.perf_counter()
            for _ in range(reps):
                fn()
            out.append(reps * items / (time.perf_counter() - start))
    return statistics.median(rates[0]), statistics.median(rates[1])


def timed_command(cmd: Sequence[str], env: dict | None = None, stdin: str | bytes | None = None,
                  ok: Iterable[int] = (0, 1)) -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds of one whole command (a new process) and its result; another exit status than ``ok``
    stops the benchmark with the command's stderr. Text in, text out, unless ``stdin`` is bytes."""
    start = time.perf_counter()
    proc = subprocess.run(list(cmd), input=stdin, capture_output=True, text=not isinstance(stdin, bytes), env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode not in tuple(ok):
        err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd[:3])} …\n{err[-2000:]}")
    return elapsed, proc


def abba(items: Sequence, run: int) -> list:
    """``items`` in order on even runs, reversed on odd ones (A B B A ...), so drift hits all alike."""
    return list(items) if run % 2 == 0 else list(items)[::-1]


def facecli_json(*args: str) -> Any:
    """``facecli ARGS --json --quiet`` (this interpreter's), its JSON output."""
    proc = subprocess.run([FACECLI, *args, "--json", "--quiet"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"facecli {' '.join(args)}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


# -- output ----------------------------------------------------------------------------------------
def table(title: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """A rich table on stdout, 160 characters wide."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(v) for v in r])
    Console(width=160).print(t)


def md_table(columns: Sequence[str]) -> None:
    """A Markdown table's header and rule; the rows follow as ``| a | b |`` lines."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))


def pct(x: float) -> str:
    return f"{x * 100:.2f} %"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine() -> dict:
    """What measured: the CPU, its cores, Python, the date, the command line and the load average."""
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M"),
            "command": " ".join([Path(sys.argv[0]).name if sys.argv else "", *sys.argv[1:]]),
            "load_average": [round(v, 2) for v in os.getloadavg()]}


def write_results(name: str | Path, data: Any, quiet: bool = False) -> Path:
    """``data`` as JSON in bench/results/``name`` (or at the path ``name``), with the ``machine`` that measured
    it when ``data`` is a dict without one."""
    path = Path(name) if isinstance(name, Path) else RESULTS / name
    if isinstance(data, dict) and "machine" not in data:
        data = {"machine": machine(), **data}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    if not quiet:
        print(f"wrote {path}", file=sys.stderr)
    return path


# -- degraded photos --------------------------------------------------------------------------------
def face_width(paths: list[str], detector_name: str) -> float:
    """Median width of the central face on a sample of the photos (every 40th), in pixels."""
    # facecli's detectors (OpenCV, onnxruntime): loaded only by the scripts that degrade photos
    from facecli.detectors import create_detector
    from facecli.evaluation.embeddings import central_face
    from facecli.imageio import read_image

    det = create_detector(detector_name, "cpu")
    widths = []
    for p in paths[::40]:
        image = read_image(p)
        faces = det.detect(image)
        if faces:
            widths.append(central_face(faces, image.shape).width)
    return float(np.median(widths))


#: A degradation: (the photo's path, its BGR pixels) -> (new pixels, ".png" or ".jpg", JPEG quality or None)
Degrade = Callable[[str, np.ndarray], tuple[np.ndarray, str, int | None]]


def degraded_copies(paths: Sequence[str], root: Path, folder: Path, make: Degrade) -> dict[str, str]:
    """Copies of ``paths`` (under ``root``) made by ``make`` into ``folder``, once (an existing copy is kept:
    ``make`` must be deterministic); original path -> copy."""
    # OpenCV: loaded only by the scripts that degrade photos
    import cv2

    out = {}
    for p in paths:
        stem = folder / Path(p).relative_to(root)
        done = [c for c in (stem.with_suffix(".png"), stem.with_suffix(".jpg")) if c.exists()]
        if done:
            out[p] = str(done[0])
            continue
        pixels, suffix, quality = make(p, cv2.imread(p))
        target = stem.with_suffix(suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        params = [] if quality is None else [cv2.IMWRITE_JPEG_QUALITY, quality]
        tmp = target.with_name(target.stem + ".tmp" + suffix)
        cv2.imwrite(str(tmp), pixels, params)
        tmp.replace(target)  # a copy interrupted half-written is never taken for a finished one
        out[p] = str(target)
    return out


# -- data ------------------------------------------------------------------------------------------
def unit(x: np.ndarray, dtype: type | None = None) -> np.ndarray:
    """Rows scaled to unit length (in ``dtype`` if given)."""
    out = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return out if dtype is None else out.astype(dtype)


def synthetic(n: int, rng: np.random.Generator, dim: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gallery vectors shaped like FaceNet's, and genuine probes of random members.

    FaceNet 20180408 embeddings of LFW span ~128 of their 512 dimensions
    (variance falls off about as exp(-i/30) along the principal axes, and the
    mean has norm ~0.19); uniform random vectors have no such structure and
    no index handles them as it handles faces. Probes are members plus noise
    in the same subspace, at squared distance ~0.5, like genuine pairs.
    Another ``dim`` keeps the same shape: a subspace of a quarter of the dimensions.
    """
    rank = dim // 4
    basis = np.linalg.qr(rng.standard_normal((dim, rank)))[0].astype(np.float32)
    scale = np.sqrt(np.exp(-np.arange(rank) / 30.0)).astype(np.float32)
    mean = rng.standard_normal(dim).astype(np.float32)
    mean *= 0.19 / np.linalg.norm(mean)

    def draw(count: int) -> np.ndarray:
        out = np.empty((count, dim), dtype=np.float32)
        for s in range(0, count, 100_000):
            z = rng.standard_normal((min(100_000, count - s), rank), dtype=np.float32) * scale
            v = z @ basis.T
            out[s:s + len(v)] = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out

    gallery = draw(n) + mean
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    members = rng.integers(0, n, 1000)
    probes = gallery[members] + 0.8 * draw(len(members))
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    return gallery, probes, members
