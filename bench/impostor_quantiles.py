"""Measure the impostor distance quantiles that `facecli calibrate` uses, on LFW.

Usage: python bench/impostor_quantiles.py [--model facenet|sface|fusion] [--images ../shared/lfw/images]
Embeds every image as `facecli eval` does (cached), takes the squared L2
distance of every pair of photos of different people (29.6 M on LFW), and
prints the manifest's "impostor" block (p, d) as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from facecli.evaluation import LabelledEmbedder
from facecli.matching import sq_distances

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "lfw" / "images")
    ap.add_argument("--model", default="facenet")
    args = ap.parse_args()
    paths = sorted(str(p) for p in args.images.glob("*/*.jpg"))
    emb, _ = LabelledEmbedder(args.model, device="cpu").embed(paths)
    x = np.stack([emb[p] for p in paths])
    _, person = np.unique([Path(p).parent.name for p in paths], return_inverse=True)
    i, j = np.triu_indices(len(x), 1)
    keep = person[i] != person[j]
    d = sq_distances(x, x)[i[keep], j[keep]]
    p = np.logspace(-7, np.log10(0.5), 36)
    q = np.quantile(d, p)
    print(json.dumps({"pairs": int(d.size), "p": [float(f"{v:.4g}") for v in p],
                      "d": [round(float(v), 4) for v in q]}))


if __name__ == "__main__":
    main()
