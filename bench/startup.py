"""Start-up time of facecli, this tree against an older revision, side by side.

Each command runs as a new process (``facecli --help``, ``facecli --version``, and a cold
``facecli verify a.jpg b.jpg``: a new process, files in the page cache), alternating between the two
trees run after run, with the same interpreter and models; the table gives medians.

    python bench/startup.py --before-rev 3958adb          # table on stdout, bench/results/startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACECLI = Path(sys.executable).with_name("facecli")


def tree_of(rev: str, into: Path) -> Path:
    """The files of ``rev`` (git archive) in ``into``."""
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def models_for(tree: Path, built: Path, into: Path) -> Path:
    """A models folder for ``tree``: links to the built files, plus its manifest where it kept it there."""
    into.mkdir()
    for f in built.iterdir():
        if f.name != "manifest.json":
            (into / f.name).symlink_to(f.resolve())
    if (tree / "models" / "manifest.json").exists():
        shutil.copy(tree / "models" / "manifest.json", into / "manifest.json")
    return into


def timed(args: list[str], tree: Path, models: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree), FACECLI_MODELS=str(models), FACECLI_DEVICE="cpu")
    start = time.perf_counter()
    proc = subprocess.run([str(FACECLI), *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: facecli {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-rev", required=True, help="git revision to compare with (e.g. main)")
    parser.add_argument("--models", type=Path, default=Path(os.environ.get("FACECLI_MODELS", ROOT / "models")),
                        help="folder of built model files (default: FACECLI_MODELS, else models/)")
    parser.add_argument("--images", type=Path, default=ROOT / "tests" / "images")
    parser.add_argument("--runs", type=int, default=15, help="runs of --help and --version per tree")
    parser.add_argument("--verify-runs", type=int, default=9)
    args = parser.parse_args()

    a, b = args.images / "obama2.jpg", args.images / "obama3.jpg"
    commands = {"--help": (["--help"], args.runs), "--version": (["--version"], args.runs),
                "verify a.jpg b.jpg (cold)": (["verify", str(a), str(b)], args.verify_runs)}
    with tempfile.TemporaryDirectory() as tmp:
        before = tree_of(args.before_rev, Path(tmp) / "before")
        trees = {"before": (before, models_for(before, args.models, Path(tmp) / "models-before")),
                 "after": (ROOT, models_for(ROOT, args.models, Path(tmp) / "models-after"))}
        has_version = {side: _has_version(*trees[side]) for side in trees}
        times: dict[str, dict[str, list[float]]] = {c: {t: [] for t in trees} for c in commands}
        for command, (argv, runs) in commands.items():
            sides = [s for s in trees if command != "--version" or has_version[s]]
            for side in sides:  # one warm-up each (bytecode, page cache)
                timed(argv, *trees[side])
            for i in range(runs):
                for side in sides if i % 2 == 0 else sides[::-1]:
                    times[command][side].append(timed(argv, *trees[side]))

    rows = []
    print(f"| command | before ({args.before_rev}) | after (this tree) | runs |")
    print("|---|---|---|---|")
    for command, by_side in times.items():
        med = {s: statistics.median(v) if v else None for s, v in by_side.items()}
        cells = [f"{med[s]:.3f} s" if med[s] is not None else "(no such option)" for s in trees]
        print(f"| `facecli {command}` | {cells[0]} | {cells[1]} | {len(by_side['after'])} |")
        rows.append({"command": command, "median_s": med, "runs_s": by_side})
    out = ROOT / "bench" / "results" / "startup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"before_rev": args.before_rev, "python": sys.executable, "rows": rows}, indent=1))
    print(f"\n(written to {out.relative_to(ROOT)})")


def _has_version(tree: Path, models: Path) -> bool:
    env = dict(os.environ, PYTHONPATH=str(tree), FACECLI_MODELS=str(models))
    return subprocess.run([str(FACECLI), "--version"], env=env, capture_output=True).returncode == 0


if __name__ == "__main__":
    main()
