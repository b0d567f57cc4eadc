"""How the CPU pipeline should use the cores: the settings `Pipeline` chose against the alternatives.

Usage: python bench/cpu_settings.py [--model fusion] [--lfw 300] [--lfw-dir DIR] [--rounds 5]

In process, the same images through `Pipeline.run` under each setting, the
settings in alternation (one pass each per round, the median of ``--rounds``):

- ``main-thread batches``: the GPU layout on the CPU (and facecli's CPU layout
  before issue 19): workers decode, detect and crop, the main thread embeds
  batches of 32 with one intra-op thread per core;
- ``workers, chunk N``: each worker analyses N images and embeds their faces
  itself, every network on one thread (the CPU default is chunks of 1, 2,
  then ``Pipeline.CHUNK``);
- ``1 worker, chunk 4``: the same on one worker, with one thread per network
  (how far two workers are from twice one: what the GIL and the memory
  bandwidth take, which a process pool could win back) and with one thread
  per core in each network (intra-op parallelism instead of workers).

Each cell also gives the process's CPU seconds per second (the cores it kept
busy): near the core count, no lock (the GIL) or single-threaded stage
holds the pipeline back, and a process pool has nothing to win. Prints a
table and writes bench/results/cpu_settings.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "lfw" / "images"


def settings(model: str) -> dict:
    """Name -> a ready pipeline (models loaded), for each layout compared."""
    from facecli.pipeline import Pipeline

    cores = os.cpu_count() or 1
    out = {}
    main = Pipeline(model=model, device="cpu", workers=min(cores, 4), in_workers=False, threads=0)
    out["main-thread batches of 32, intra-op threads = cores"] = main
    for chunk in (1, 2, 4, 8):
        p = Pipeline(model=model, device="cpu")
        p.CHUNK = chunk
        p.prefetch = max(p.prefetch, 2 * p.workers * chunk)
        out[f"{p.workers} workers, chunks up to {chunk}, 1 thread per network"] = p
    for threads in sorted({1, cores}):
        one = Pipeline(model=model, device="cpu", workers=1, threads=threads)
        out[f"1 worker, chunks up to 4, {threads} thread(s) per network"] = one
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fusion")
    ap.add_argument("--lfw", type=int, default=300)
    ap.add_argument("--lfw-dir", type=Path, default=LFW)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "helpers"))
    from fetch_images import fetch
    from rich.console import Console
    from rich.table import Table

    everything = sorted(args.lfw_dir.glob("*/*.jpg"))
    sets = {"LFW (250x250)": [str(p) for p in everything[::max(1, len(everything) // max(args.lfw, 1))][:args.lfw]],
            "sdist photos x6": sorted(str(p) for p in fetch().iterdir()) * 6}
    pipes = settings(args.model)
    for p in pipes.values():  # load every model before timing
        list(p.run(sets["sdist photos x6"][:2]))
    results = {"model": args.model, "cores": os.cpu_count(), "rounds": args.rounds, "sets": {}}
    table = Table(title=f"CPU layouts, --model {args.model}, in process, median of {args.rounds}: img/s (CPU s/s)",
                  title_justify="left")
    table.add_column("setting")
    for label in sets:
        table.add_column(label)
    rates: dict[str, dict[str, list[float]]] = {name: {label: [] for label in sets} for name in pipes}
    busy: dict[str, dict[str, list[float]]] = {name: {label: [] for label in sets} for name in pipes}
    load = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for label, paths in sets.items():
            for name, p in pipes.items():
                start, cpu = time.perf_counter(), time.process_time()
                n = sum(1 for _ in p.run(paths))
                wall = time.perf_counter() - start
                rates[name][label].append(n / wall)
                busy[name][label].append((time.process_time() - cpu) / wall)  # cores kept busy on average
        load.append(os.getloadavg()[0])
    for name in pipes:
        med = {label: statistics.median(r) for label, r in rates[name].items()}
        cores = {label: statistics.median(b) for label, b in busy[name].items()}
        results["sets"][name] = {"images_per_s": {k: round(v, 1) for k, v in med.items()}, "runs": rates[name],
                                 "cpu_seconds_per_second": {k: round(v, 2) for k, v in cores.items()}}
        table.add_row(name, *(f"{med[label]:.1f} ({cores[label]:.2f} cores)" for label in sets))
    results["load_average_1min"] = load
    Console(width=160).print(table)
    print(f"load average (1 min) per round: {' '.join(f'{v:.1f}' for v in load)}", file=sys.stderr)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cpu_settings.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
