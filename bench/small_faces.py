"""How identification degrades as faces get small: the basis of `identify --min-face`.

Usage: python bench/small_faces.py [--model fusion] [--sizes 16,24,32,48] [--every 3] [--lfw DIR] [--images DIR]

Builds LFW's open-set protocol (`facecli eval openset`), keeps the enrolled
photos as they are and downscales every probe and stranger photo so that its
face is about N pixels wide (lossless PNG copies under the cache), then
measures, at the default threshold (the tau for FPIR 1 % with all 1,559
people enrolled): the share of strangers given a name (FPIR), the share of
enrolled people's photos given their own name (rank-1), and faces found.
``--every N`` searches with every Nth probe and stranger (all 1,559 stay
enrolled), to keep each size to a few minutes.
Prints a table and writes bench/results/small_faces.json.
"""

from __future__ import annotations

import cv2
import numpy as np
from common import Degrade, add_lfw, degraded_copies, face_width, parser, resolve_lfw, write_results

from facecli import evaluation
from facecli.decisions import identification_threshold
from facecli.evaluation.openset import openset_report
from facecli.models import DEFAULT_MODEL, pipeline_spec
from facecli.paths import cache_dir


def shrink(factor: float) -> Degrade:
    """Scaled by ``factor`` (area averaging), as lossless PNG."""
    def make(_path: str, image: np.ndarray) -> tuple[np.ndarray, str, None]:
        size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA), ".png", None

    return make


def main() -> None:
    ap = parser(__doc__)
    add_lfw(ap, images=True)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--sizes", default="16,24,32,48")
    ap.add_argument("--every", type=int, default=3)
    args = resolve_lfw(ap.parse_args())
    spec = pipeline_spec(args.model)
    full = evaluation.read_openset(args.images)
    openset = evaluation.OpenSet(full.enrolled, full.probes[::args.every], full.strangers[::args.every])
    gallery = sorted(p for ps in openset.enrolled.values() for p in ps)
    searched = sorted({p for p, _ in openset.probes} | set(openset.strangers))
    threshold = identification_threshold(args.model, len(openset.enrolled))
    width = face_width(searched, spec.detector)
    embedder = evaluation.LabelledEmbedder(args.model, device="cpu")
    rows = []
    for size in [0] + [int(s) for s in args.sizes.split(",")]:
        if size:
            factor = size / width
            copies = degraded_copies(searched, args.images, cache_dir() / "small-faces" / f"{size}px", shrink(factor))
        else:
            copies = {p: p for p in searched}
        emb, fallbacks = embedder.embed(gallery + list(copies.values()))
        emb |= {p: emb[c] for p, c in copies.items()}
        rep = openset_report(emb, openset, threshold)
        d = rep.at_default_tau
        rows.append({"face_px": size or round(width), "fpir": d["fpir"], "rank1": d["rank1"],
                     "rank1_at_fpir_1pc": rep.at_fpir["0.01"]["rank1"],
                     "no_face_found": fallbacks / len(searched)})
        r = rows[-1]
        print(f"{r['face_px']:>6} px  FPIR {r['fpir'] * 100:6.2f} %  rank-1 {r['rank1'] * 100:6.2f} %  "
              f"rank-1 at FPIR 1 % {r['rank1_at_fpir_1pc'] * 100:6.2f} %  no face {r['no_face_found'] * 100:5.1f} %",
              flush=True)
    result = {"model": args.model, "tau": threshold.tau, "enrolled": len(openset.enrolled),
              "probes": len(openset.probes), "strangers": len(openset.strangers), "median_face_px": width, "rows": rows}
    write_results("small_faces.json", result)


if __name__ == "__main__":
    main()
