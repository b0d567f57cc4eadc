"""Throughput benchmark: facecli against OpenCV and face_recognition, stage rates, cold start, 1:N search, GPU.

Usage: python bench/throughput.py [--anchor PATH] [--lfw-count N] [--lfw DIR] [--runs R] [--models M1,M2]
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

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import (
    FACECLI,
    PHOTOS,
    ROOT,
    add_lfw,
    lfw_subset,
    machine,
    paired_rates,
    parser,
    photos,
    rate,
    synthetic,
    table,
    timed_command,
    write_results,
)

DEFAULT_ANCHOR = Path.home() / ".cache" / "facecli" / "bench-venv" / "bin" / "face_recognition"
RESULTS: dict = {}


def timed(cmd: list[str], env: dict | None = None, stdin: str | None = None) -> float:
    return timed_command(cmd, env, stdin)[0]


# -- 1. end to end ----------------------------------------------------------------
def datasets(work: Path, lfw: Path, lfw_count: int) -> dict[str, Path]:
    """The sdist photos replicated 6x (42 files), and an evenly spread LFW subset (every 25th for 300)."""
    sets = {}
    folder = work / "photos"
    folder.mkdir()
    for copy in range(6):
        for src in map(Path, photos()):
            shutil.copy(src, folder / f"{copy}_{src.name}")
    sets["photos"] = folder
    subset = lfw_subset(lfw, lfw_count)
    if subset:
        sets["lfw"] = work / "lfw"
        sets["lfw"].mkdir()
        for src in map(Path, subset):
            shutil.copy(src, sets["lfw"] / src.name)
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


def end_to_end(anchor: Path | None, lfw: Path, lfw_count: int, runs: int, models: list[str],
               before: str | None = None) -> None:
    """Whole commands in alternation: facecli embed vs OpenCV's script, facecli enroll + identify vs
    face_recognition (which encodes the known folder on every run), on the same folders."""
    opencv = opencv_command()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        known = work / "known"
        known.mkdir()
        for name in ("obama", "biden"):
            shutil.copy(PHOTOS / f"{name}.jpg", known / f"{name}.jpg")
        env = dict(os.environ, FACECLI_DEVICE="cpu")
        embed_rows, identify_rows, out = [], [], {}
        for label, folder in datasets(work, lfw, lfw_count).items():
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
            per_s = {tool: len(files) / statistics.median(t) for tool, t in times.items()}
            spread = {tool: round(max(t) / min(t) - 1, 3) for tool, t in times.items()}
            out[label] = {"images": len(files), "median_megapixels": round(mp, 2), "runs_s": times,
                          "images_per_s": {k: round(v, 2) for k, v in per_s.items()}, "spread": spread,
                          "load_average_1min": load}
            for suffix, _ in versions(before):
                for model in models:
                    fc = per_s[f"embed {model}{suffix}"]
                    embed_rows.append([label, f"facecli embed --model {model}{suffix}", f"{fc:.1f}",
                                       f"{fc / per_s['opencv']:.2f}x", f"{spread[f'embed {model}{suffix}']:.0%}"])
            embed_rows.append([label, "OpenCV YuNet + SFace (bench/opencv_pipeline.py)", f"{per_s['opencv']:.1f}", "1",
                               f"{spread['opencv']:.0%}"])
            fr = per_s.get("face_recognition")
            for suffix, _ in versions(before):
                for model in models:
                    fc = per_s[f"identify {model}{suffix}"]
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
def stages(lfw: Path, lfw_count: int, model: str) -> None:
    """In-process rates of each stage, facecli's and OpenCV's, one thread each; then the whole loops."""
    import cv2

    from facecli.embedding import FaceEmbedder
    from facecli.models import source_path
    from facecli.pipeline import Pipeline

    pipe = Pipeline(model=model, device="cpu")
    single = FaceEmbedder(model, "cpu", threads=1)  # what each worker runs
    detector = cv2.FaceDetectorYN.create(str(source_path("yunet")), "", (320, 320), 0.7, 0.3, 5000)
    recognizer = cv2.FaceRecognizerSF.create(str(source_path("sface")), "")
    sets = {"photos": photos()}
    if subset := lfw_subset(lfw, lfw_count):
        sets["lfw"] = subset
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
        raw, stage = paired_rates(lambda feed=feed: emb.session.run(None, feed), lambda x=x: emb.embed(x), batch)
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
    r = {"facecli decode img/s": rate(lambda: [decode(b, f, jpeg_shrink(b, pipe.det_size))
                                                for b, f in zip(blobs, files)], len(files)),
         "opencv decode img/s": rate(lambda: [cv_read(f) for f in files], len(files)),
         "facecli detect img/s": rate(lambda: [pipe.detector.detect(im) for im in decoded], len(files)),
         "opencv detect img/s": rate(cv_detect, len(files)),
         "facecli embed faces/s": rate(lambda: single.embed(crops), len(crops)),
         "opencv embed faces/s": rate(lambda: [recognizer.feature(recognizer.alignCrop(im, f))
                                                for im, f in cv_faces], len(cv_faces))}
    cv2.setNumThreads(threads)
    r["facecli pipeline img/s (all cores)"] = rate(lambda: sum(1 for _ in pipe.run(files)), len(files))
    return r, len(crops)


# -- 3. cold start -------------------------------------------------------------------
def cold_start(anchor: Path | None, runs: int, models: list[str], before: str | None = None) -> None:
    a, b = str(PHOTOS / "obama.jpg"), str(PHOTOS / "obama2.jpg")
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
    from facecli.gallery.fileindex import EXPANSION_SEARCH, HNSW, TemplateIndex
    from facecli.matching import closest_pair, sq_distances

    gallery, probes, _ = synthetic(n, rng)
    truth = [int(i) for i in np.concatenate([np.argmin(sq_distances(chunk, gallery), axis=1)
                                             for chunk in np.array_split(probes, 20)])]
    timed_probes = probes[:100] if n > 200_000 else probes  # ~0.2 s a query at 1M: 100 are enough
    exact_ms, _ = _latencies(lambda p: closest_pair(p[None], gallery)[1], timed_probes)
    gen = float(np.median(sq_distances(probes, gallery[truth]).diagonal()))
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
        return int(keys[closest_pair(p[None], gallery[keys])[1]])

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
    from facecli.runtime import gpu_runtime_present, onnxruntime

    ort = onnxruntime()  # with its telemetry off, as facecli imports it

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
            per_s = rate(lambda emb=emb, x=x: emb.embed(x), 64)
        except Exception as exc:  # report a provider that does not start, keep going
            out[device] = {"error": str(exc).splitlines()[0]}
            rows.append([device, "-", str(exc).splitlines()[0][:80]])
            continue
        out[device] = {"provider": emb.provider, "faces_per_s_batch64": round(per_s, 1)}
        rows.append([device, emb.provider, f"{per_s:.0f}"])
    RESULTS["gpu"] = out
    table("5. GPU embed stage, batch 64", ["device", "provider used", "faces/s"], rows)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--anchor", type=Path, default=DEFAULT_ANCHOR, help="the face_recognition CLI")
    add_lfw(ap, "--lfw-dir", count=300)
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
    RESULTS["machine"] = machine()
    if "e2e" in only:
        end_to_end(anchor, args.lfw, args.lfw_count, args.runs, args.models.split(","), args.before)
    if "stages" in only:
        stages(args.lfw, args.lfw_count, args.models.split(",")[0])
    if "cold" in only:
        cold_start(anchor, args.runs, args.models.split(","), args.before)
    if "search" in only:
        search([int(s) for s in args.sizes.split(",") if s], args.compare_at)
    if "gpu" in only:
        gpu()
    write_results("throughput.json", RESULTS)


if __name__ == "__main__":
    main()
