"""Start-up time of facecli, this tree against an older revision, side by side.

Each command runs as a new process (``facecli --help``, ``facecli --version``, and a cold
``facecli verify a.jpg b.jpg``: a new process, files in the page cache), alternating between the two
trees run after run, with the same interpreter and models; the table gives medians.

    python bench/startup.py --before-rev 3958adb          # table on stdout, bench/results/startup.json
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import FACECLI, PHOTOS, ROOT, abba, md_table, parser, timed_command, write_results


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
    return timed_command([FACECLI, *args], env, ok=(0,))[0]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--before-rev", required=True, help="git revision to compare with (e.g. main)")
    ap.add_argument("--models", type=Path, default=Path(os.environ.get("FACECLI_MODELS", ROOT / "models")),
                    help="folder of built model files (default: FACECLI_MODELS, else models/)")
    ap.add_argument("--images", type=Path, default=PHOTOS)
    ap.add_argument("--runs", type=int, default=15, help="runs of --help and --version per tree")
    ap.add_argument("--verify-runs", type=int, default=9)
    args = ap.parse_args()

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
                for side in abba(sides, i):
                    times[command][side].append(timed(argv, *trees[side]))

    rows = []
    md_table(["command", f"before ({args.before_rev})", "after (this tree)", "runs"])
    for command, by_side in times.items():
        med = {s: statistics.median(v) if v else None for s, v in by_side.items()}
        cells = [f"{med[s]:.3f} s" if med[s] is not None else "(no such option)" for s in trees]
        print(f"| `facecli {command}` | {cells[0]} | {cells[1]} | {len(by_side['after'])} |")
        rows.append({"command": command, "median_s": med, "runs_s": by_side})
    write_results("startup.json", {"before_rev": args.before_rev, "python": sys.executable, "rows": rows})


def _has_version(tree: Path, models: Path) -> bool:
    env = dict(os.environ, PYTHONPATH=str(tree), FACECLI_MODELS=str(models))
    return subprocess.run([FACECLI, "--version"], env=env, capture_output=True).returncode == 0


if __name__ == "__main__":
    main()
