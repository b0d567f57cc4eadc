"""How much each model should weigh in the fusion: LFW and open-set figures against the weight.

Usage: python bench/fusion_weights.py [--images ../shared/lfw/images] [--pairs ../shared/lfw/pairs.txt]

Fusing unit embeddings ``a`` (FaceNet) and ``b`` (SFace) as ``[sqrt(w) a, sqrt(1-w) b]``
keeps unit length and gives the squared distance ``w d_a + (1-w) d_b``: w = 0.5 is
the plain concatenation scaled to unit norm, w = 0 is SFace alone, w = 1 FaceNet
alone. Uses the embeddings `facecli eval` caches (YuNet detections for both), so it
takes seconds after one `facecli eval openset --model fusion`. Prints a table and
writes bench/results/fusion_weights.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from facecli import evaluation
from facecli.detection import create_detector
from facecli.embedding import FaceEmbedder
from facecli.models import pipeline_spec
from facecli.output import Output

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "lfw"


def part_embeddings(paths: list[str]) -> list[dict[str, np.ndarray]]:
    """FaceNet's and SFace's embeddings of each image, both placed by YuNet, from the eval cache."""
    fusion = FaceEmbedder("fusion", "cpu")
    det = create_detector(fusion.spec.detector, "cpu")
    setting = {"detector": fusion.spec.detector,
               "detector_args": {k: v for k, v in vars(det).items() if isinstance(v, (int, float, str, tuple))}}
    out = []
    for part in fusion.parts:
        fusion.parts = [part]
        with Output(quiet=True).progress(len(paths), part.name) as tick:
            out.append(evaluation.embed_for_eval(paths, det, fusion, setting, on_image=tick)[0])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=SHARED / "images")
    ap.add_argument("--pairs", type=Path, default=SHARED / "pairs.txt")
    args = ap.parse_args()
    openset = evaluation.read_openset(args.images)
    pairs = evaluation.read_lfw_pairs(args.pairs, args.images)
    paths = sorted({p for ps in openset.enrolled.values() for p in ps} | {p for p, _ in openset.probes}
                   | set(openset.strangers) | set(pairs.a) | set(pairs.b))
    facenet, sface = part_embeddings(paths)
    rows = []
    print(f"{'w':>5} {'LFW %':>7} {'rank-1 closed':>14} {'at FPIR 1 %':>12} {'at FPIR 0.1 %':>14}")
    for w in np.round(np.arange(0, 1.0001, 0.05), 2):
        emb = {p: np.concatenate([np.sqrt(w) * facenet[p], np.sqrt(1 - w) * sface[p]]) for p in paths}
        lfw = evaluation.report(evaluation.distances(pairs, emb), pairs.same, pairs.fold)
        rep = evaluation.openset_report(emb, openset, pipeline_spec("fusion").default_tau)
        rows.append({"w_facenet": float(w), "lfw": lfw.accuracy, "rank1_closed_set": rep["rank1_closed_set"],
                     "rank1_fpir_1pc": rep["at_fpir"]["0.01"]["rank1"],
                     "rank1_fpir_0.1pc": rep["at_fpir"]["0.001"]["rank1"]})
        r = rows[-1]
        print(f"{w:5.2f} {r['lfw'] * 100:7.2f} {r['rank1_closed_set'] * 100:14.2f} {r['rank1_fpir_1pc'] * 100:12.2f} "
              f"{r['rank1_fpir_0.1pc'] * 100:14.2f}", flush=True)
    target = ROOT / "bench" / "results" / "fusion_weights.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
