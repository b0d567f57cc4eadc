"""`identify -` on a fast pipe: this checkout against another facecli source tree (before streaming stdin).

Usage: python bench/stdin_stream.py --before DIR [--lfw-count 300] [--lfw DIR] [--runs 5] [--model fusion]

DIR is a source tree of the version to compare with, e.g. the commit before
the change: ``git archive <commit> | tar -x -C DIR``. Both run the same
interpreter on the same paths, written to stdin at once (a fast pipe), with a
gallery of two people; the runs alternate ABBA so that drift on a shared
machine hits both alike, and the median is reported. The two versions' JSON
rows are also compared (they must be equal). Prints a table and writes
bench/results/stdin_stream.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import PHOTOS, ROOT, abba, add_lfw, add_lfw_count, lfw_subset, parser, timed_command, write_results


def identify(tree: Path, env: dict, listing: bytes, model: str) -> tuple[float, bytes]:
    """Wall time of one `facecli identify - --json` over a fast pipe, and its stdout."""
    cmd = [sys.executable, "-m", "facecli", "identify", "-", "--json", "--model", model]
    elapsed, proc = timed_command(cmd, dict(env, PYTHONPATH=str(tree)), listing)
    return elapsed, proc.stdout


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--before", type=Path, required=True, help="source tree of the version to compare with")
    add_lfw_count(ap, "--images")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--model", default="fusion")
    add_lfw(ap)
    args = ap.parse_args()
    trees = {"before": args.before.resolve(), "after": ROOT}
    files = lfw_subset(args.lfw, args.lfw_count, required=True)
    listing = "".join(f + "\n" for f in files).encode()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, FACECLI_GALLERY=str(Path(tmp) / "g.db"), FACECLI_DEVICE="cpu")
        for name in ("obama", "biden"):
            subprocess.run([sys.executable, "-m", "facecli", "enroll", name, str(PHOTOS / f"{name}.jpg"), "-q",
                            "--model", args.model], env=dict(env, PYTHONPATH=str(ROOT)), check=True)
        times: dict[str, list[float]] = {k: [] for k in trees}
        outputs: dict[str, bytes] = {}
        for run in range(args.runs):
            for label in abba(trees, run):
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
    write_results("stdin_stream.json", result)


if __name__ == "__main__":
    main()
