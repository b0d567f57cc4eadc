"""Run `facecli eval lfw` for each variant of FaceNet's pipeline and tabulate the results.

Usage: python bench/lfw_variants.py [--lfw DIR] [--pairs P] [--images D] [--only NAME ...]
Prints a Markdown table and writes bench/results/lfw-variants.json. Embeddings
and detections are cached (see facecli.evaluation), so a re-run is quick.
"""

from __future__ import annotations

import sys
import time

from common import add_lfw, facecli_json, md_table, parser, resolve_lfw, write_results

VARIANTS = {  # all with --model facenet (bench/openset_variants.py compares the models)
    "mtcnn-m32": [],
    "mtcnn-m16": ["--margin", "16"],
    "mtcnn-m44": ["--margin", "44"],
    "mtcnn-m32-flip": ["--flip"],
    "mtcnn-m44-flip": ["--margin", "44", "--flip"],
    "haar-m32": ["--detector", "haar"],
}


def main() -> None:
    ap = parser(__doc__)
    add_lfw(ap, images=True, pairs=True)
    ap.add_argument("--only", nargs="*", choices=list(VARIANTS))
    args = resolve_lfw(ap.parse_args())
    results = {}
    for name, extra in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        extra = ["--model", "facenet", *extra]
        start = time.perf_counter()
        rep = facecli_json("eval", "lfw", "--pairs", str(args.pairs), "--images", str(args.images), *extra)
        rep["command"] = "facecli eval lfw " + " ".join(extra)
        rep["seconds"] = round(time.perf_counter() - start, 1)
        results[name] = rep
        print(f"{name}: {rep['accuracy'] * 100:.2f} %", file=sys.stderr)
    md_table(["variant", "command", "accuracy (10-fold)", "tau (all pairs)", "VAL@FAR=1e-3", "AUC", "no face"])
    for name, r in results.items():
        print(f"| {name} | `{r['command']}` | {r['accuracy'] * 100:.2f} % ± {r['accuracy_std'] * 100:.2f} | "
              f"{r['tau']:.2f} | {r['val'] * 100:.1f} % | {r['auc']:.4f} | {r['fallbacks']} |")
    write_results("lfw-variants.json", results)


if __name__ == "__main__":
    main()
