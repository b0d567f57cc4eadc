"""How much each model should weigh in the fusion: LFW and open-set figures against the weight.

Usage: python bench/fusion_weights.py [--flip facenet,sface] [--lfw DIR] [--images DIR] [--pairs FILE]

Fusing unit embeddings ``a`` (FaceNet) and ``b`` (SFace) as ``[sqrt(w) a, sqrt(1-w) b]``
keeps unit length and gives the squared distance ``w d_a + (1-w) d_b``: w = 0.5 is
the plain concatenation scaled to unit norm, w = 0 is SFace alone, w = 1 FaceNet
alone. Uses the embeddings `facecli eval` caches (YuNet detections for both), so it
takes seconds after one `facecli eval openset --model fusion`. Prints a table and
writes bench/results/fusion_weights.json.
"""

from __future__ import annotations

import numpy as np
from common import add_lfw, parser, resolve_lfw, write_results

from facecli import evaluation
from facecli.decisions import verification_threshold
from facecli.embedding import fuse
from facecli.evaluation.openset import openset_report
from facecli.evaluation.pairs import distances
from facecli.models import pipeline_spec


def part_embeddings(paths: list[str], flip: set[str]) -> list[dict[str, np.ndarray]]:
    """Each component's embeddings of each image (the fusion's FaceNet and SFace, both placed by YuNet), from the
    eval cache: the fusion's own LabelledEmbedder, left with one of its parts at a time."""
    out = []
    for i, name in enumerate(pipeline_spec("fusion").components):
        labelled = evaluation.LabelledEmbedder("fusion", device="cpu")
        part = labelled.embedder.parts[i]
        part.flip = name.split("-")[0] in flip  # facenet-int8 is "facenet" to --flip
        labelled.embedder.parts = [part]  # one part: the "fusion" is that part's embedding itself
        out.append(labelled.embed(paths)[0])
    return out


def main() -> None:
    ap = parser(__doc__)
    add_lfw(ap, images=True, pairs=True)
    ap.add_argument("--flip", default="", help="models whose embedding adds the mirrored crop's")
    args = resolve_lfw(ap.parse_args())
    flip = {m for m in args.flip.split(",") if m}
    openset = evaluation.read_openset(args.images)
    pairs = evaluation.read_lfw_pairs(args.pairs, args.images)
    paths = sorted({p for ps in openset.enrolled.values() for p in ps} | {p for p, _ in openset.probes}
                   | set(openset.strangers) | set(pairs.a) | set(pairs.b))
    facenet, sface = part_embeddings(paths, flip)

    def fused(w: float) -> dict[str, np.ndarray]:
        return {p: fuse([facenet[p], sface[p]], [w, 1 - w]) for p in paths}

    def rank1_at_1pc(emb: dict[str, np.ndarray], part: evaluation.OpenSet) -> float:
        return openset_report(emb, part, threshold).at_fpir["0.01"]["rank1"]

    weights = [float(w) for w in np.round(np.arange(0, 1.0001, 0.05), 2)]
    threshold = verification_threshold("fusion")
    rows = []
    print(f"{'w':>5} {'LFW %':>7} {'rank-1 closed':>14} {'at FPIR 1 %':>12} {'at FPIR 0.1 %':>14}")
    for w in weights:
        emb = fused(w)
        lfw = evaluation.report(distances(pairs, emb), pairs.same, pairs.fold)
        rep = openset_report(emb, openset, threshold)
        r = {"w_facenet": w, "flip": sorted(flip), "lfw": lfw.accuracy, "rank1_closed_set": rep.rank1_closed_set,
             "rank1_fpir_1pc": rep.at_fpir["0.01"]["rank1"], "rank1_fpir_0.1pc": rep.at_fpir["0.001"]["rank1"]}
        rows.append(r)
        print(f"{w:5.2f} {r['lfw'] * 100:7.2f} {r['rank1_closed_set'] * 100:14.2f} {r['rank1_fpir_1pc'] * 100:12.2f} "
              f"{r['rank1_fpir_0.1pc'] * 100:14.2f}", flush=True)

    # Choosing w on the data it is scored on flatters it: two-fold cross-validation by person
    # picks w on one half of the people (and strangers) and scores it on the other.
    halves = [evaluation.OpenSet(
        {n: ps for i, (n, ps) in enumerate(openset.enrolled.items()) if i % 2 == k},
        [(p, n) for p, n in openset.probes if list(openset.enrolled).index(n) % 2 == k],
        openset.strangers[k::2]) for k in (0, 1)]
    scores = {w: [rank1_at_1pc(fused(w), h) for h in halves] for w in weights}
    held_out = []
    for k in (0, 1):
        best = max(weights, key=lambda w: scores[w][k])
        held_out.append({"chosen_on_half": k, "w_facenet": best, "rank1_fpir_1pc_other_half": scores[best][1 - k]})
    cv = float(np.mean([h["rank1_fpir_1pc_other_half"] for h in held_out]))
    print(f"two-fold CV by person: w chosen {[h['w_facenet'] for h in held_out]}, "
          f"rank-1 at FPIR 1 % on the held-out halves {cv * 100:.2f} %")
    write_results(f"fusion_weights{'-flip-' + '-'.join(sorted(flip)) if flip else ''}.json",
                  {"rows": rows, "cross_validation": held_out, "cv_rank1_fpir_1pc": cv})


if __name__ == "__main__":
    main()
