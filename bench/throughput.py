"""Throughput benchmark: facecli against face_recognition, stage rates, cold start, 1:N search, GPU.

Usage: python bench/throughput.py [--anchor PATH] [--lfw N] [--runs R] [--sizes 1000,100000,1000000]
                                  [--only e2e,stages,cold,search,gpu]

Prints one table per section and writes bench/results/throughput.json.
``make bench`` sets up the face_recognition venv (dlib-bin, face_recognition_models,
face_recognition --no-deps) and runs this with the defaults. Whole commands are
timed side by side, alternating the two tools, and the median of ``--runs`` is
reported; machines are noisy, so only figures from one run are compared.
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
def datasets(work: Path, lfw_count: int) -> dict[str, Path]:
    """The sdist photos replicated 6x (42 files), and an evenly spread LFW subset."""
    sets = {}
    photos = work / "photos"
    photos.mkdir()
    for copy in range(6):
        for src in sorted(IMAGES.iterdir()):
            shutil.copy(src, photos / f"{copy}_{src.name}")
    sets["photos"] = photos
    if LFW.is_dir() and lfw_count:
        everything = sorted(LFW.glob("*/*.jpg"))
        step = max(1, len(everything) // lfw_count)
        lfw = work / "lfw"
        lfw.mkdir()
        for src in everything[::step][:lfw_count]:
            shutil.copy(src, lfw / src.name)
        sets["lfw"] = lfw
    return sets


def end_to_end(anchor: Path | None, lfw_count: int, runs: int, models: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        known = work / "known"
        known.mkdir()
        for name in ("obama", "biden"):
            shutil.copy(IMAGES / f"{name}.jpg", known / f"{name}.jpg")
        envs = {m: dict(os.environ, FACECLI_GALLERY=str(work / f"{m}.db"), FACECLI_DEVICE="cpu") for m in models}
        for model, env in envs.items():
            for name in ("obama", "biden"):
                subprocess.run([FACECLI, "enroll", name, str(known / f"{name}.jpg"), "-q", "--model", model],
                               env=env, check=True)
        rows, out = [], {}
        for label, folder in datasets(work, lfw_count).items():
            files = sorted(str(p) for p in folder.iterdir())
            listing = "\n".join(files) + "\n"
            mp = statistics.median(_megapixels(f) for f in files)
            times: dict[str, list[float]] = {m: [] for m in models} | {"face_recognition": []}
            for _ in range(runs):  # the tools in alternation, so drift hits all alike
                for model, env in envs.items():
                    times[model].append(timed([FACECLI, "identify", "-", "--json"], env, listing))
                if anchor:
                    times["face_recognition"].append(timed([str(anchor), "--cpus", str(os.cpu_count()),
                                                            str(known), str(folder)]))
            fr = len(files) / statistics.median(times["face_recognition"]) if anchor else None
            out[label] = {"images": len(files), "median_megapixels": round(mp, 2), "runs": times,
                          "face_recognition_images_per_s": fr and round(fr, 2)}
            for model in models:
                fc = len(files) / statistics.median(times[model])
                out[label][model] = {"images_per_s": round(fc, 2), "ratio": fr and round(fc / fr, 2)}
                rows.append([label, model, len(files), f"{mp:.2f}", f"{fc:.1f}", f"{fr:.2f}" if fr else "-",
                             f"{fc / fr:.1f}x" if fr else "-"])
        RESULTS["end_to_end"] = out
        table(f"1. End to end: identify a folder (2 people enrolled), median of {runs}, whole command",
              ["folder", "--model", "images", "median MP", "facecli img/s", "face_recognition img/s", "ratio"],
              rows)


def _megapixels(path: str) -> float:
    from facecli.imageio import declared_size, image_format

    data = Path(path).read_bytes()
    size = declared_size(data, image_format(data) or "")
    return size[0] * size[1] / 1e6 if size else 0.0


# -- 2. stage rates ----------------------------------------------------------------
def stages() -> None:
    from facecli.imageio import decode, jpeg_shrink, read_bytes
    from facecli.pipeline import Pipeline

    pipe = Pipeline(model="facenet", device="cpu")  # the stage rates of FaceNet's pipeline
    sets = {"photos": sorted(str(p) for p in IMAGES.iterdir())}
    if LFW.is_dir():
        sets["lfw"] = [str(p) for p in sorted(LFW.glob("*/*.jpg"))[:: max(1, 7701 // 200)][:200]]
    rows, out = [], {}
    for label, files in sets.items():
        blobs = [read_bytes(f) for f in files]
        start = time.perf_counter()
        decoded = [decode(b, f, jpeg_shrink(b, pipe.det_size)) for b, f in zip(blobs, files)]
        decode_rate = len(files) / (time.perf_counter() - start)
        start = time.perf_counter()
        for image in decoded:
            pipe.detector.detect(image)
        detect_rate = len(files) / (time.perf_counter() - start)
        start = time.perf_counter()
        n = sum(len(r.faces) for r in pipe.run(files))
        pipeline_rate = len(files) / (time.perf_counter() - start)
        out[label] = {"decode_images_per_s": round(decode_rate, 1), "detect_images_per_s_one_thread":
                      round(detect_rate, 1), "pipeline_images_per_s": round(pipeline_rate, 1), "faces": n}
        rows.append([label, len(files), f"{decode_rate:.0f}", f"{detect_rate:.1f}", f"{pipeline_rate:.1f}"])
    table("2a. Stage rates, in process (decode and detect on one thread; the pipeline on all cores)",
          ["images", "files", "decode img/s", "detect img/s (1 thread)", "pipeline img/s"], rows)

    # the embed stage (preprocessing + session) against the bare session on the same tensor
    crops = np.stack([f.crop for r in pipe.run(sets["photos"]) for f in r.faces])
    emb = pipe.embedder.parts[0]
    rows, out["embed"] = [], {}
    for batch in (1, 16, 32, 64):
        x = np.resize(crops, (batch, *crops.shape[1:]))
        feed = {emb.spec.input["name"]: ((x.astype(np.float32) - 127.5) / 128.0)}
        emb.batch_size = batch
        raw, stage = _paired_rates(lambda feed=feed: emb.session.run(None, feed), lambda x=x: emb.embed(x), batch)
        out["embed"][batch] = {"raw_faces_per_s": round(raw, 1), "stage_faces_per_s": round(stage, 1),
                               "share": round(stage / raw, 3)}
        rows.append([batch, f"{raw:.1f}", f"{stage:.1f}", f"{stage / raw:.1%}"])
    RESULTS["stages"] = out
    table("2b. Embed stage vs bare onnxruntime, same model and batch (CPU)",
          ["batch", "onnxruntime faces/s", "embed stage faces/s", "share"], rows)


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
def cold_start(anchor: Path | None, runs: int, models: list[str]) -> None:
    a, b = str(IMAGES / "obama.jpg"), str(IMAGES / "obama2.jpg")
    times: dict[str, list[float]] = {m: [] for m in models} | {"face_recognition": []}
    with tempfile.TemporaryDirectory() as tmp:
        known = Path(tmp) / "known"
        known.mkdir()
        shutil.copy(a, known / "obama.jpg")
        env = dict(os.environ, FACECLI_DEVICE="cpu")
        for model in models:  # the first run writes the verified-model and optimised-graph caches
            timed([FACECLI, "verify", a, b, "--model", model], env)
        for _ in range(max(runs, 5)):
            for model in models:
                times[model].append(timed([FACECLI, "verify", a, b, "--model", model], env))
            if anchor:
                times["face_recognition"].append(timed([str(anchor), str(known), b]))
    medians = {tool: round(statistics.median(t), 3) for tool, t in times.items() if t}
    RESULTS["cold_start"] = {"median_s": medians, "runs": times}
    table("3. Cold start: one verify of two photos, whole command", ["tool", "median s", "runs"],
          [[f"facecli verify a b --model {m}", f"{medians[m]:.2f}", len(times[m])] for m in models]
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
    from facecli.matching import sq_distances
    from facecli.search import EXPANSION_SEARCH, HNSW, TemplateIndex

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
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--compare-at", type=int, default=100_000, help="gallery size of the library comparison")
    ap.add_argument("--only", default="e2e,stages,cold,search,gpu")
    ap.add_argument("--models", default="fusion,sface,facenet", help="--model values timed end to end")
    args = ap.parse_args()
    anchor = args.anchor if args.anchor.exists() else None
    if anchor is None:
        print(f"face_recognition not found at {args.anchor}: facecli figures only (make bench installs it)",
              file=sys.stderr)
    only = set(args.only.split(","))
    RESULTS["machine"] = {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
                          "date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv)}
    if "e2e" in only:
        end_to_end(anchor, args.lfw, args.runs, args.models.split(","))
    if "stages" in only:
        stages()
    if "cold" in only:
        cold_start(anchor, args.runs, args.models.split(","))
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
