"""Run `facecli eval lfw` for each variant of FaceNet's pipeline and tabulate the results.

Usage: python bench/lfw_variants.py [--pairs P] [--images D] [--only NAME ...]
Prints a Markdown table and writes bench/results/lfw-variants.json. Embeddings
and detections are cached (see facecli.evaluation), so a re-run is quick.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACECLI = str(Path(sys.executable).with_name("facecli"))
VARIANTS = {  # all with --model facenet (bench/openset_variants.py compares the models)
    "mtcnn-m32": [],
    "mtcnn-m16": ["--margin", "16"],
    "mtcnn-m44": ["--margin", "44"],
    "mtcnn-m32-flip": ["--flip"],
    "mtcnn-m44-flip": ["--margin", "44", "--flip"],
    "haar-m32": ["--detector", "haar"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default=str(ROOT.parent / "shared/lfw/pairs.txt"))
    ap.add_argument("--images", default=str(ROOT.parent / "shared/lfw/images"))
    ap.add_argument("--only", nargs="*", choices=list(VARIANTS))
    args = ap.parse_args()
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, extra in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        extra = ["--model", "facenet", *extra]
        cmd = [FACECLI, "eval", "lfw", "--pairs", args.pairs, "--images", args.images, "--json", *extra]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"{name}: {proc.stderr.strip()}")
        rep = json.loads(proc.stdout)
        rep["command"] = "facecli eval lfw " + " ".join(extra)
        rep["seconds"] = round(time.perf_counter() - start, 1)
        results[name] = rep
        print(f"{name}: {rep['accuracy'] * 100:.2f} %", file=sys.stderr)
    print("| variant | command | accuracy (10-fold) | tau (all pairs) | VAL@FAR=1e-3 | AUC | no face |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | `{r['command']}` | {r['accuracy'] * 100:.2f} % ± {r['accuracy_std'] * 100:.2f} | "
              f"{r['tau']:.2f} | {r['val'] * 100:.1f} % | {r['auc']:.4f} | {r['fallbacks']} |")
    (out_dir / "lfw-variants.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
