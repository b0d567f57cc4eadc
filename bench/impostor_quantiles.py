"""Measure the impostor distance quantiles that `facecli calibrate` uses, on LFW.

Usage: python bench/impostor_quantiles.py [--model facenet|sface|fusion] [--lfw DIR] [--images DIR]
Embeds every image as `facecli eval` does (cached), takes the squared L2
distance of every pair of photos of different people (29.6 M on LFW:
``tune.impostor_quantiles``, as `facecli tune` measures a head's), and
prints the manifest's "impostor" block as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from common import add_lfw, parser, resolve_lfw

from facecli.evaluation import LabelledEmbedder
from facecli.tune import impostor_quantiles


def main() -> None:
    ap = parser(__doc__)
    add_lfw(ap, images=True)
    ap.add_argument("--model", default="facenet")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images (a quick try)")
    args = resolve_lfw(ap.parse_args())
    paths = sorted(str(p) for p in args.images.glob("*/*.jpg"))[:args.limit]
    emb, _ = LabelledEmbedder(args.model, device="cpu").embed(paths)
    x = np.stack([emb[p] for p in paths])
    what = (f"LFW deep-funneled, {len(paths):,} images, every cross-person pair, default pipeline "
            f"(bench/impostor_quantiles.py --model {args.model})")
    print(json.dumps(impostor_quantiles(x, [Path(p).parent.name for p in paths], what)))


if __name__ == "__main__":
    main()
