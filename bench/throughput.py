"""Throughput benchmark: facecli against OpenCV and face_recognition, stage rates, cold start, 1:N search, GPU.

Usage: python bench/throughput.py [--anchor PATH] [--lfw N] [--lfw-dir DIR] [--runs R] [--models M1,M2]
                                  [--before SRC[:MODELS]] [--sizes 1000,100000,1000000]
                                  [--only e2e,stages,cold,search,gpu]

Prints one table per section and writes bench/results/throughput.json.
``make bench`` sets up the face_recognition venv (dlib-bin, face_recognition_models,
face_recognition --no-deps) and runs this with the defaults. Two anchors: OpenCV's
own YuNet + SFace pipeline (bench/opencv_pipeline.py, on the OpenCV Zoo files facecli's
models are built from) for `facecli embed`, and the face_recognition CLI for
`facecli enroll` + `identify`. Whole commands are timed side by side, every tool
once per round, and the median of ``--runs`` is reported with the spread and the
load average; machines are noisy, so only figures from one run are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FACECLI = str(Path(sys.executable).with_name("facecli"))
IMAGES = ROOT / "tests" / "images"
LFW = ROOT.parent / "shared" / "lfw" / "images"
DEFAULT_ANCHOR = Path.home() / ".cache" / "facecli" / "bench-venv" / "bin" / "face_recognition"
RESULTS: dict = {}


def table(title: str, columns: list[str], rows: list[list]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(v) for v in r])
    Console(width=160).print(t)


def timed(cmd: list[str], env: dict | None = None, stdin: str | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd[:3])} …\n{proc.stderr[-2000:]}")
    return elapsed


# -- 1. end to end ----------------------------------------------------------------
def datasets(work: Path, lfw_dir: Path, lfw_count: int) -> dict[str, Path]:
    """The sdist photos replicated 6x (42 files), and an evenly spread LFW subset (every 25th for 300)."""
    sets = {}
    photos = work / "photos"
    photos.mkdir()
    for copy in range(6):
        for src in sorted(IMAGES.iterdir()):
            shutil.copy(src, photos / f"{copy}_{src.name}")
    sets["photos"] = photos
    if lfw_dir.is_dir() and lfw_count:
        everything = sorted(lfw_dir.glob("*/*.jpg"))
        step = max(1, len(everything) // lfw_count)
        lfw = work / "lfw"
        lfw.mkdir()
        for src in everything[::step][:lfw_count]:
            shutil.copy(src, lfw / src.name)
        sets["lfw"] = lfw
    return sets


def opencv_command() -> list[str]:
    """OpenCV's own YuNet + SFace pipeline (bench/opencv_pipeline.py) on the original OpenCV Zoo int8 files."""
    from facecli.models import source_path

    return [sys.executable, str(ROOT / "bench" / "opencv_pipeline.py"), str(source_path("yunet")),
            str(source_path("sface"))]


def versions(before: str | None) -> list[tuple[str, dict[str, str]]]:
    """(label suffix, environment) of each facecli timed: this checkout, and ``--before SRC[:MODELS]`` if given."""
    out = [("", {})]
    if before:
        src, _, models = before.partition(":")
        out.append((" (before)", {"PYTHONPATH": src, "FACECLI_MODELS": models or str(Path(src) / "models")}))
    return out


def _enroll_and_identify(model: str, work: Path, known: Path, listing: str, extra: dict[str, str]) -> float:
    """Seconds of three whole commands, as a user runs them: enroll two people, identify a folder."""
    db = work / f"{model}.db"
    db.unlink(missing_ok=True)
    env = dict(os.environ, FACECLI_GALLERY=str(db), FACECLI_DEVICE="cpu", **extra)
    return (sum(timed([FACECLI, "enroll", name, str(known / f"{name}.jpg"), "-q", "--model", model], env)
                for name in ("obama", "biden"))
            + timed([FACECLI, "identify", "-", "--json"], env, listing))


def end_to_end(anchor: Path | None, lfw_dir: Path, lfw_count: int, runs: int, models: list[str],
               before: str | None = None) -> None:
    """Whole commands in alternation: facecli embed vs OpenCV's script, facecli enroll + identify vs
    face_recognition (which encodes the known folder on every run), on the same folders."""
    opencv = opencv_command()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        known = work / "known"
        known.mkdir()
        for name in ("obama", "biden"):
            shutil.copy(IMAGES / f"{name}.jpg", known / f"{name}.jpg")
        env = dict(os.environ, FACECLI_DEVICE="cpu")
        embed_rows, identify_rows, out = [], [], {}
        for label, folder in datasets(work, lfw_dir, lfw_count).items():
            files = sorted(str(p) for p in folder.iterdir())
            listing = "\n".join(files) + "\n"
            mp = statistics.median(_megapixels(f) for f in files)
            times: dict[str, list[float]] = {}
            load = [os.getloadavg()[0]]
            for _ in range(runs):  # every tool once per round, so drift hits all alike
                for suffix, extra in versions(before):
                    for model in models:
                        times.setdefault(f"embed {model}{suffix}", []).append(
                            timed([FACECLI, "embed", "-", "--json", "--model", model], env | extra, listing))
                times.setdefault("opencv", []).append(timed(opencv, env, listing))
                for suffix, extra in versions(before):
                    for model in models:
                        times.setdefault(f"identify {model}{suffix}", []).append(
                            _enroll_and_identify(model, work, known, listing, extra))
                if anchor:
                    times.setdefault("face_recognition", []).append(
                        timed([str(anchor), "--cpus", str(os.cpu_count()), str(known), str(folder)]))
                load.append(os.getloadavg()[0])
            rate = {tool: len(files) / statistics.median(t) for tool, t in times.items()}
            spread = {tool: round(max(t) / min(t) - 1, 3) for tool, t in times.items()}
            out[label] = {"images": len(files), "median_megapixels": round(mp, 2), "runs_s": times,
                          "images_per_s": {k: round(v, 2) for k, v in rate.items()}, "spread": spread,
                          "load_average_1min": load}
            for suffix, _ in versions(before):
                for model in models:
                    fc = rate[f"embed {model}{suffix}"]
                    embed_rows.append([label, f"facecli embed --model {model}{suffix}", f"{fc:.1f}",
                                       f"{fc / rate['opencv']:.2f}x", f"{spread[f'embed {model}{suffix}']:.0%}"])
            embed_rows.append([label, "OpenCV YuNet + SFace (bench/opencv_pipeline.py)", f"{rate['opencv']:.1f}", "1",
                               f"{spread['opencv']:.0%}"])
            fr = rate.get("face_recognition")
            for suffix, _ in versions(before):
                for model in models:
                    fc = rate[f"identify {model}{suffix}"]
                    identify_rows.append([label, f"facecli enroll x2 + identify --model {model}{suffix}", f"{fc:.1f}",
                                          f"{fc / fr:.2f}x" if fr else "-",
                                          f"{spread[f'identify {model}{suffix}']:.0%}"])
            if fr:
                identify_rows.append([label, f"face_recognition known/ {label}/ --cpus {os.cpu_count()}", f"{fr:.2f}",
                                      "1", f"{spread['face_recognition']:.0%}"])
            print(f"{label}: load average (1 min) during the runs: {' '.join(f'{v:.1f}' for v in load)}",
                  file=sys.stderr)
        RESULTS["end_to_end"] = out
        columns = ["folder", "command", "img/s", "ratio", "max/min - 1"]
        table(f"1a. Embed every face, whole commands, median of {runs} (vs OpenCV's own pipeline)", columns,
              embed_rows)
        table(f"1b. Enroll 2 people + identify the folder, whole commands, median of {runs} (vs face_recognition)",
              columns, identify_rows)


def _megapixels(path: str) -> float:
    from facecli.imageio import declared_size, image_format

    data = Path(path).read_bytes()
    size = declared_size(data, image_format(data) or "")
    return size[0] * size[1] / 1e6 if size else 0.0


# -- 2. stage rates ----------------------------------------------------------------
def stages(lfw_dir: Path, lfw_count: int, model: str) -> None:
    """In-process rates of each stage, facecli's and OpenCV's, one thread each; then the whole loops."""
    import cv2

    from facecli.embedding import FaceEmbedder
    from facecli.models import source_path
    from facecli.pipeline import Pipeline

    pipe = Pipeline(model=model, device="cpu")
    single = FaceEmbedder(model, "cpu", threads=1)  # what each worker runs
    detector = cv2.FaceDetectorYN.create(str(source_path("yunet")), "", (320, 320), 0.7, 0.3, 5000)
    recognizer = cv2.FaceRecognizerSF.create(str(source_path("sface")), "")
    sets = {"photos": sorted(str(p) for p in IMAGES.iterdir())}
    if lfw_dir.is_dir() and lfw_count:
        everything = sorted(lfw_dir.glob("*/*.jpg"))
        sets["lfw"] = [str(p) for p in everything[:: max(1, len(everything) // lfw_count)][:lfw_count]]
    rows, out = [], {}
    for label, files in sets.items():
        r, n_faces = _stage_rates(files, pipe, single, detector, recognizer)
        out[label] = {"files": len(files), "faces": n_faces, **{k: round(v, 1) for k, v in r.items()}}
        rows.append([label, len(files), n_faces, *(f"{v:.1f}" for v in r.values())])
    table(f"2a. Stage rates in process, --model {model}: each stage on one thread (facecli / OpenCV), then "
          "facecli's pipeline on all cores", ["images", "files", "faces", "decode", "cv decode", "detect", "cv detect",
                                              "embed faces/s", "cv embed faces/s", "pipeline img/s"], rows)

    # the embed stage (preprocessing + session) against the bare session on the same tensor
    crops = np.stack([f.crop for r in pipe.run(sets["photos"]) for f in r.faces])
    emb = single.parts[0]
    rows, out["embed"] = [], {}
    for batch in (1, 4, 16, 32):
        x = np.resize(crops, (batch, *crops.shape[1:]))
        t = ((x.astype(np.float32) - emb.spec.preprocess["mean"]) / emb.spec.preprocess["std"]).astype(np.float32)
        feed = {emb.spec.input["name"]: np.ascontiguousarray(t.transpose(0, 3, 1, 2)
                                                             if emb.spec.input["layout"] == "NCHW" else t)}
        emb.batch_size = batch
        raw, stage = _paired_rates(lambda feed=feed: emb.session.run(None, feed), lambda x=x: emb.embed(x), batch)
        out["embed"][batch] = {"raw_faces_per_s": round(raw, 1), "stage_faces_per_s": round(stage, 1),
                               "share": round(stage / raw, 3)}
        rows.append([batch, f"{raw:.1f}", f"{stage:.1f}", f"{stage / raw:.1%}"])
    RESULTS["stages"] = out
    table(f"2b. Embed stage vs bare onnxruntime, {emb.name}, one thread, same batch (CPU)",
          ["batch", "onnxruntime faces/s", "embed stage faces/s", "share"], rows)


def _stage_rates(files: list[str], pipe, single, detector, recognizer) -> tuple[dict[str, float], int]:
    """Images (or faces) per second of each stage on one thread, facecli's then OpenCV's, and the whole pipeline."""
    import cv2

    from facecli.imageio import decode, jpeg_shrink, read_bytes

    blobs = [read_bytes(f) for f in files]
    decoded = [decode(b, f, jpeg_shrink(b, pipe.det_size)) for b, f in zip(blobs, files)]
    crops = [tuple(p.crop(im, d) for p in single.parts) for im in decoded for d in pipe.detector.detect(im)]
    def cv_read(f: str):  # as bench/opencv_pipeline.py: read, then at most det_size pixels long
        image = cv2.imread(f)
        scale = min(1.0, pipe.det_size / max(image.shape[:2]))
        return image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)

    bgr = [cv_read(f) for f in files]

    def cv_detect() -> list:
        found = []
        for im in bgr:
            detector.setInputSize((im.shape[1], im.shape[0]))
            rows = detector.detect(im)[1]
            found += [] if rows is None else [(im, face) for face in rows]
        return found

    cv_faces = cv_detect()
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    r = {"facecli decode img/s": _rate(lambda: [decode(b, f, jpeg_shrink(b, pipe.det_size))
                                                for b, f in zip(blobs, files)], len(files)),
         "opencv decode img/s": _rate(lambda: [cv_read(f) for f in files], len(files)),
         "facecli detect img/s": _rate(lambda: [pipe.detector.detect(im) for im in decoded], len(files)),
         "opencv detect img/s": _rate(cv_detect, len(files)),
         "facecli embed faces/s": _rate(lambda: single.embed(crops), len(crops)),
         "opencv embed faces/s": _rate(lambda: [recognizer.feature(recognizer.alignCrop(im, f))
                                                for im, f in cv_faces], len(cv_faces))}
    cv2.setNumThreads(threads)
    r["facecli pipeline img/s (all cores)"] = _rate(lambda: sum(1 for _ in pipe.run(files)), len(files))
    return r, len(crops)


def _rate(fn, items: int, seconds: float = 3.0) -> float:
    """Items per second: the median of 5 timings of repeated calls after a warm-up."""
    fn()
    reps = max(1, int(seconds / 5 / max(_once(fn), 1e-4)))
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        samples.append(reps * items / (time.perf_counter() - start))
    return statistics.median(samples)


def _paired_rates(a, b, items: int, rounds: int = 9) -> tuple[float, float]:
    """Items per second of ``a`` and of ``b``, timed in alternation (medians), so drift hits both alike."""
    a(), b()
    reps = max(1, int(0.4 / max(_once(a), 1e-4)))
    rates: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for fn, out in ((a, rates[0]), (b, rates[1])):
            start = time.perf_counter()
            for _ in range(reps):
                fn()
            out.append(reps * items / (time.perf_counter() - start))
    return statistics.median(rates[0]), statistics.median(rates[1])


def _once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# -- 3. cold start -------------------------------------------------------------------
def cold_start(anchor: Path | None, runs: int, models: list[str], before: str | None = None) -> None:
    a, b = str(IMAGES / "obama.jpg"), str(IMAGES / "obama2.jpg")
    tools = [(f"{m}{suffix}", m, extra) for suffix, extra in versions(before) for m in models]
    times: dict[str, list[float]] = {name: [] for name, _, _ in tools} | {"face_recognition": []}
    with tempfile.TemporaryDirectory() as tmp:
        known = Path(tmp) / "known"
        known.mkdir()
        shutil.copy(a, known / "obama.jpg")
        env = dict(os.environ, FACECLI_DEVICE="cpu")
        for _, model, extra in tools:  # the first run writes the verified-model and optimised-graph caches
            timed([FACECLI, "verify", a, b, "--model", model], env | extra)
        for _ in range(max(runs, 5)):
            for name, model, extra in tools:
                times[name].append(timed([FACECLI, "verify", a, b, "--model", model], env | extra))
            if anchor:
                times["face_recognition"].append(timed([str(anchor), str(known), b]))
    medians = {tool: round(statistics.median(t), 3) for tool, t in times.items() if t}
    RESULTS["cold_start"] = {"median_s": medians, "runs": times}
    table("3. Cold start: one verify of two photos, whole command", ["tool", "median s", "runs"],
          [[f"facecli verify a b --model {n}", f"{medians[n]:.2f}", len(times[n])] for n, _, _ in tools]
          + ([["face_recognition known/ b", f"{medians['face_recognition']:.2f}", len(times["face_recognition"])]]
             if anchor else []))


# -- 4. 1:N search -------------------------------------------------------------------
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


def _latencies(fn, probes: np.ndarray) -> tuple[np.ndarray, list[int]]:
    times, found = [], []
    for p in probes:
        start = time.perf_counter()
        found.append(fn(p))
        times.append(time.perf_counter() - start)
    return np.array(times) * 1000, found


def search(sizes: list[int], compare_at: int) -> None:
    rng = np.random.default_rng(0)
    rows: list[list] = []
    RESULTS["search"] = {n: _search_one(n, rng, n == compare_at, rows) for n in sizes}
    table("4. 1:N search, synthetic FaceNet-shaped unit vectors, 1000 genuine probes, one query at a time",
          ["templates", "method", "build s", "MB", "p50 ms", "p99 ms", "recall@1 vs exact"], rows)


def _search_one(n: int, rng: np.random.Generator, compare: bool, rows: list[list]) -> dict:
    from facecli.gallery.search import EXPANSION_SEARCH, HNSW, TemplateIndex
    from facecli.matching import sq_distances

    gallery, probes, _ = synthetic(n, rng)
    truth = [int(i) for i in np.concatenate([np.argmin(sq_distances(chunk, gallery), axis=1)
                                             for chunk in np.array_split(probes, 20)])]
    timed_probes = probes[:100] if n > 200_000 else probes  # ~0.2 s a query at 1M: 100 are enough
    exact_ms, _ = _latencies(lambda p: int(np.argmin(sq_distances(p[None], gallery)[0])), timed_probes)
    gen = float(np.median(np.sum((probes - gallery[truth]) ** 2, axis=1)))
    res = {"genuine_sq_distance_median": round(gen, 3),
           "exact": {"p50_ms": round(float(np.median(exact_ms)), 3),
                     "p99_ms": round(float(np.percentile(exact_ms, 99)), 3), "mb": round(gallery.nbytes / 1e6)}}
    rows.append([f"{n:,}", "exact (float32 matrix product)", "-", f"{res['exact']['mb']}",
                 f"{np.median(exact_ms):.2f}", f"{np.percentile(exact_ms, 99):.2f}", "1.000"])
    start = time.perf_counter()
    templates = TemplateIndex.build(gallery)
    build = time.perf_counter() - start
    index = templates.index

    def query(p: np.ndarray) -> int:  # facecli's path: 64 candidates, re-ranked exactly
        keys = templates.candidates(p[None], 64)
        return int(keys[np.argmin(sq_distances(p[None], gallery[keys])[0])])

    for ef in sorted({EXPANSION_SEARCH, 256, 512}):
        index.expansion_search = ef
        ms, found = _latencies(query, probes)
        recall = float(np.mean(np.array(found) == np.array(truth)))
        key = "usearch" if ef == EXPANSION_SEARCH else f"usearch_ef{ef}"
        res[key] = {"build_s": round(build, 1), "mb": round(index.memory_usage / 1e6),
                    "p50_ms": round(float(np.median(ms)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
                    "recall_at_1": recall, "settings": {**HNSW, "expansion_search": ef}}
        label = f"usearch HNSW {HNSW['dtype']}, ef {ef}, + exact re-rank" + (" (facecli)" if ef == EXPANSION_SEARCH
                                                                              else "")
        rows.append([f"{n:,}", label, f"{build:.1f}", f"{res[key]['mb']}", f"{np.median(ms):.2f}",
                     f"{np.percentile(ms, 99):.2f}", f"{recall:.3f}"])
    if compare:
        res.update(_alternatives(gallery, probes, truth, rows))
    return res


def _alternatives(gallery: np.ndarray, probes: np.ndarray, truth: list[int], rows: list) -> dict:
    """The other libraries the index was chosen against, at 100k (skipped when not installed)."""
    found: dict = {}
    n, dim = gallery.shape
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None:
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        start = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 128
        hnsw.add(gallery)
        hnsw.hnsw.efSearch = 128
        found["faiss-hnsw-flat"] = (hnsw, time.perf_counter() - start,
                                    lambda ix, p: int(ix.search(p[None], 1)[1][0, 0]))
        start = time.perf_counter()
        lists = max(16, int(4 * np.sqrt(n)))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
        ivf.train(gallery[np.random.default_rng(1).choice(n, min(n, 64 * lists), replace=False)])
        ivf.add(gallery)
        ivf.nprobe = 32
        found["faiss-ivf-flat nprobe 32"] = (ivf, time.perf_counter() - start,
                                             lambda ix, p: int(ix.search(p[None], 1)[1][0, 0]))
    try:
        import hnswlib
    except ImportError:
        hnswlib = None
    if hnswlib is not None:
        start = time.perf_counter()
        h = hnswlib.Index(space="ip", dim=dim)
        h.init_index(max_elements=n, ef_construction=128, M=16)
        h.set_num_threads(os.cpu_count() or 1)
        h.add_items(gallery)
        h.set_ef(128)
        found["hnswlib float32"] = (h, time.perf_counter() - start, lambda ix, p: int(ix.knn_query(p, 1)[0][0, 0]))
    res = {}
    for name, (ix, build, fn) in found.items():
        ms, got = _latencies(lambda p, ix=ix, fn=fn: fn(ix, p), probes)
        recall = float(np.mean(np.array(got) == np.array(truth)))
        res[name] = {"build_s": round(build, 1), "p50_ms": round(float(np.median(ms)), 3),
                     "p99_ms": round(float(np.percentile(ms, 99)), 3), "recall_at_1": recall}
        rows.append([f"{n:,}", name, f"{build:.1f}", "-", f"{np.median(ms):.2f}", f"{np.percentile(ms, 99):.2f}",
                     f"{recall:.3f}"])
    return res


# -- 5. GPU ------------------------------------------------------------------------------
def gpu() -> None:
    import onnxruntime as ort

    from facecli.runtime import gpu_runtime_present

    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" not in providers or not gpu_runtime_present():
        RESULTS["gpu"] = {"skipped": "no CUDA provider or no CUDA 13 / cuDNN 9 libraries", "providers": providers}
        print("5. GPU: skipped (no CUDA provider or no CUDA 13 / cuDNN 9 libraries on this machine)")
        return
    from facecli.embedding import Embedder

    rows, out = [], {}
    for device in ("cuda", "tensorrt"):
        try:
            emb = Embedder("facenet", device, batch_size=64)
            x = np.random.default_rng(0).integers(0, 255, (64, 160, 160, 3), dtype=np.uint8)
            rate = _rate(lambda emb=emb, x=x: emb.embed(x), 64)
        except Exception as exc:  # report a provider that does not start, keep going
            out[device] = {"error": str(exc).splitlines()[0]}
            rows.append([device, "-", str(exc).splitlines()[0][:80]])
            continue
        out[device] = {"provider": emb.provider, "faces_per_s_batch64": round(rate, 1)}
        rows.append([device, emb.provider, f"{rate:.0f}"])
    RESULTS["gpu"] = out
    table("5. GPU embed stage, batch 64", ["device", "provider used", "faces/s"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--anchor", type=Path, default=DEFAULT_ANCHOR, help="the face_recognition CLI")
    ap.add_argument("--lfw", type=int, default=300, help="LFW images in the end-to-end folder (0: none)")
    ap.add_argument("--lfw-dir", type=Path, default=LFW, help="LFW's images folder (<Name>/<Name>_NNNN.jpg)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--compare-at", type=int, default=100_000, help="gallery size of the library comparison")
    ap.add_argument("--only", default="e2e,stages,cold,search,gpu")
    ap.add_argument("--models", default="fusion,sface,facenet", help="--model values timed end to end")
    ap.add_argument("--before", help="also time this checkout of facecli, SRC[:MODELS] (a before/after table)")
    args = ap.parse_args()
    anchor = args.anchor if args.anchor.exists() else None
    if anchor is None:
        print(f"face_recognition not found at {args.anchor}: facecli figures only (make bench installs it)",
              file=sys.stderr)
    only = set(args.only.split(","))
    RESULTS["machine"] = {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
                          "date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv)}
    if "e2e" in only:
        end_to_end(anchor, args.lfw_dir, args.lfw, args.runs, args.models.split(","), args.before)
    if "stages" in only:
        stages(args.lfw_dir, args.lfw, args.models.split(",")[0])
    if "cold" in only:
        cold_start(anchor, args.runs, args.models.split(","), args.before)
    if "search" in only:
        search([int(s) for s in args.sizes.split(",") if s], args.compare_at)
    if "gpu" in only:
        gpu()
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "throughput.json").write_text(json.dumps(RESULTS, indent=1, default=str))
    print(f"wrote {out / 'throughput.json'}", file=sys.stderr)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
