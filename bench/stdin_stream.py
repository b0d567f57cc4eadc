"""`identify -` on a fast pipe: this checkout against another facecli source tree (before streaming stdin).

Usage: python bench/stdin_stream.py --before DIR [--images 300] [--runs 5] [--model fusion]

DIR is a source tree of the version to compare with, e.g. the commit before
the change: ``git archive <commit> | tar -x -C DIR``. Both run the same
interpreter on the same paths, written to stdin at once (a fast pipe), with a
gallery of two people; the runs alternate ABBA so that drift on a shared
machine hits both alike, and the median is reported. The two versions' JSON
rows are also compared (they must be equal). Prints a table and writes
bench/results/stdin_stream.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the shared LFW folder beside the checkout (or beside the folder of worktrees)
LFW = next((p for p in (ROOT.parent / "shared" / "lfw" / "images", ROOT.parents[1] / "shared" / "lfw" / "images")
            if p.is_dir()), ROOT.parent / "shared" / "lfw" / "images")
IMAGES = ROOT / "tests" / "images"


def lfw_subset(folder: Path, count: int) -> list[str]:
    """``count`` LFW images spread evenly over the sorted list (as bench/throughput.py picks them)."""
    everything = sorted(folder.glob("*/*.jpg"))
    if not everything:
        sys.exit(f"{folder}: no LFW images (give --lfw)")
    return [str(p) for p in everything[:: max(1, len(everything) // count)][:count]]


def identify(tree: Path, env: dict, listing: bytes, model: str) -> tuple[float, bytes]:
    """Wall time of one `facecli identify - --json` over a fast pipe, and its stdout."""
    cmd = [sys.executable, "-m", "facecli", "identify", "-", "--json", "--model", model]
    start = time.perf_counter()
    proc = subprocess.run(cmd, input=listing, capture_output=True, env=dict(env, PYTHONPATH=str(tree)))
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"{tree}: failed ({proc.returncode})\n{proc.stderr.decode()[-2000:]}")
    return elapsed, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="source tree of the version to compare with")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default="fusion")
    parser.add_argument("--lfw", type=Path, default=LFW, help="LFW images folder (<Name>/<Name>_NNNN.jpg)")
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": ROOT}
    files = lfw_subset(args.lfw, args.images)
    listing = "".join(f + "\n" for f in files).encode()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, FACECLI_GALLERY=str(Path(tmp) / "g.db"), FACECLI_DEVICE="cpu")
        for name in ("obama", "biden"):
            subprocess.run([sys.executable, "-m", "facecli", "enroll", name, str(IMAGES / f"{name}.jpg"), "-q",
                            "--model", args.model], env=dict(env, PYTHONPATH=str(ROOT)), check=True)
        times: dict[str, list[float]] = {k: [] for k in trees}
        outputs: dict[str, bytes] = {}
        for run in range(args.runs):
            order = list(trees) if run % 2 == 0 else list(trees)[::-1]  # ABBA
            for label in order:
                elapsed, out = identify(trees[label], env, listing, args.model)
                times[label].append(round(elapsed, 3))
                outputs.setdefault(label, out)
                print(f"run {run + 1} {label}: {elapsed:.2f} s", file=sys.stderr)
    same = [json.loads(x) for x in outputs["before"].splitlines()] == \
        [json.loads(x) for x in outputs["after"].splitlines()]
    rates = {k: len(files) / statistics.median(v) for k, v in times.items()}
    result = {"images": len(files), "model": args.model, "runs": times, "before": str(trees["before"]),
              "images_per_s": {k: round(v, 2) for k, v in rates.items()},
              "after_over_before": round(rates["after"] / rates["before"], 3), "same_rows": same,
              "load_average": os.getloadavg()}
    print(f"identify - --json, {len(files)} LFW images on a fast pipe, --model {args.model}, "
          f"median of {args.runs} (alternating ABBA)")
    print(f"{'version':8} {'median s':>9} {'img/s':>7}  runs (s)")
    for k in trees:
        print(f"{k:8} {statistics.median(times[k]):9.2f} {rates[k]:7.2f}  {' '.join(map(str, times[k]))}")
    print(f"after / before: {result['after_over_before']:.3f}; rows identical: {same}")
    out = ROOT / "bench" / "results" / "stdin_stream.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
