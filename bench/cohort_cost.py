"""What a gallery-normalised score costs per query at 100,000 templates, against today's exact search (issue 20).

Usage: python bench/cohort_cost.py [--size 100000] [--dim 640] [--repeats 30] [--batch 1]

Random unit vectors stand for the templates (one per person) and the queries. The reference is the exact
search itself (matching.sq_distances against every template, then the nearest: what identify does up to
100,000 templates); each variant adds its statistic to one such search. The variants are timed in
alternation (a new random order each round), median of --repeats, so a busy machine slows them alike.
The last row is the library's whole matching.identify, whose per-person mean templates (np.add.reduceat
over every row) cost far more than the search at this size.
Prints a table and writes bench/results/cohort-cost.json.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from common import RESULTS, md_table, parser, write_results
from common import unit as unit_rows

from facecli.matching import TemplateMatrix, identify, sq_distances
from facecli.values import Threshold

unit = partial(unit_rows, dtype=np.float32)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=640)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--batch", type=int, default=1, help="faces per search")
    ap.add_argument("--out", type=Path, default=RESULTS / "cohort-cost.json")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    raw = unit(rng.standard_normal((args.size, args.dim)))
    mean = raw.mean(0)  # stands for the manifest's (or the gallery's) mean embedding
    centred = unit(raw - mean)  # a centred gallery stores its templates centred, once
    gallery = TemplateMatrix([f"p{i}" for i in range(args.size)], np.arange(args.size), raw, np.arange(args.size))
    g_mean = unit(raw.mean(0, keepdims=True))[0]
    # the T-norm over all K without the distances: mean from the gallery's mean, spread from its second moment
    second = (raw.T @ raw / args.size).astype(np.float32)
    queries = [unit(rng.standard_normal((args.batch, args.dim))) for _ in range(args.repeats)]
    tau = Threshold(1.0)

    def library(q: np.ndarray) -> object:
        return identify(q, gallery, tau)

    def core(q: np.ndarray, g: np.ndarray = raw) -> tuple[np.ndarray, np.ndarray]:
        """The exact search itself: every distance, then the nearest person (one template per person)."""
        d = sq_distances(q, g)
        nearest = np.argmin(d, axis=1)
        return d, d[np.arange(len(q)), nearest]

    def cohort_topk(k: int) -> Callable[[np.ndarray], object]:
        def run(q: np.ndarray) -> object:
            d, nearest = core(q)
            after = np.partition(d, k, axis=1)[:, 1:k + 1]  # the k persons after the nearest
            return nearest - 0.5 * after.mean(1)
        return run

    def cohort_all(q: np.ndarray) -> object:
        d, nearest = core(q)
        return (nearest - d.mean(1)) / d.std(1)

    def centred_fixed(q: np.ndarray) -> object:
        return core(unit(q - mean), centred)[1]

    def gallery_mean_shift(q: np.ndarray) -> object:
        return core(q)[1] - 0.4 * (2 - 2 * q @ g_mean)

    def moments_tnorm(q: np.ndarray) -> object:
        nearest = core(q)[1]
        m = 2 - 2 * q @ g_mean
        var = 4 * (np.einsum("ij,jk,ik->i", q, second, q) - (q @ g_mean) ** 2)
        return (nearest - m) / np.sqrt(np.maximum(var, 1e-12))

    def second_pass(q: np.ndarray) -> object:
        core(q)
        return core(q)[0].mean(1)  # what "a second pass over the gallery" would cost

    variants: dict[str, Callable[[np.ndarray], object]] = {
        "exact search: every distance and the nearest (matching.sq_distances)": lambda q: core(q)[1],
        "+ top-10 cohort mean (partition k+1)": cohort_topk(10),
        "+ top-50 cohort mean": cohort_topk(50),
        "+ T-norm over all K (mean, sd of the distances)": cohort_all,
        "centred on a fixed mean (query centred; gallery stored centred)": centred_fixed,
        "+ gallery-mean shift (one dot product)": gallery_mean_shift,
        "+ T-norm over all K from the gallery's moments (D x D)": moments_tnorm,
        "reference: a second pass over the gallery": second_pass,
        "library today: matching.identify (mean templates)": library,
    }
    for fn in variants.values():  # warm up
        fn(queries[0])
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for q in queries:
        for i in rng.permutation(len(names)):  # a fresh order each round: no variant always follows another
            t0 = time.perf_counter()
            variants[names[i]](q)
            times[names[i]].append(time.perf_counter() - t0)
    base = float(np.median(times[next(iter(variants))]))
    print(f"{args.size:,} templates, dim {args.dim}, {args.batch} face(s) per search, median of {args.repeats}:\n")
    md_table(["variant", "ms per search", "relative to the exact search"])
    rows = {}
    for name, t in times.items():
        med = float(np.median(t))
        rows[name] = {"ms": med * 1000, "ratio": med / base}
        print(f"| {name} | {med * 1000:.2f} | {med / base:.2f}× |")
    write_results(args.out, {"size": args.size, "dim": args.dim, "batch": args.batch, "repeats": args.repeats,
                             "variants": rows})


if __name__ == "__main__":
    main()
