"""How a tail model of impostor distances fitted on a few validation people predicts other people's: generalised
Pareto (what `facecli tune` fits) against an exponential tail, and the reach the person bootstrap gives.

Usage: python bench/tail_study.py [--seeds 0 1] [--people 50 100 250 500] [--draws 5] [--model fusion]
                                  [--lfw DIR] [--features FILE]

For each split seed, LFW's people are split in halves as bench/tune_lfw.py
splits them. On the held-out half every impostor pair is measured: that is
the truth, F(t) = P(distance <= t). From the other half, ``--draws`` random
sets of N people (one-photo and several-photo people in LFW's proportion)
stand for a head's validation people, on the base model's embeddings: each
gets the tail ``facecli.tune.tail.tail_model`` fits, and an exponential tail
(xi = 0) on the same threshold. For gallery sizes K, the tau each predicts
for FPIR 1 % is compared with the truth: F(tau) / p, where p is the
per-comparison rate aimed at (1 = exact; 2 = twice the strangers named). The
reach of each set is shown beside it. Prints Markdown tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import add_lfw, md_table, parser, resolve_lfw
from tune_lfw import FEATURES, load

from facecli.calibration import gpd_quantile, impostor_probability
from facecli.tune import split_people
from facecli.tune.tail import tail_model

SIZES = (10, 30, 100, 300, 1000, 3000)


def impostor_distances(x: np.ndarray, people: np.ndarray) -> np.ndarray:
    """Every squared distance between rows of different people, sorted."""
    _, person = np.unique(people, return_inverse=True)
    parts = []
    for start in range(0, len(x), 1024):
        block = np.clip(2.0 - 2.0 * x[start:start + 1024] @ x.T, 0.0, 4.0)
        rows = np.arange(start, start + len(block))
        mask = (person[rows, None] != person[None, :]) & (rows[:, None] < np.arange(len(x))[None, :])
        parts.append(block[mask])
    return np.sort(np.concatenate(parts))


def main() -> None:
    ap = parser(__doc__)
    add_lfw(ap, images=True)
    ap.add_argument("--model", default="fusion")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--people", type=int, nargs="+", default=[50, 100, 250, 500])
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--features", type=Path, default=FEATURES)
    args = resolve_lfw(ap.parse_args())
    args.degrade = "none"
    _, x, people = load(args)
    wanted = np.array([impostor_probability(0.01, k) for k in SIZES])
    found: dict[tuple[str, int], list[np.ndarray]] = {}
    reaches: dict[int, list[int]] = {}
    for seed in args.seeds:
        tune_people, held = split_people(people, 0.5, seed=seed)
        truth = impostor_distances(x[np.isin(people, held)], people[np.isin(people, held)])
        tune = np.isin(people, tune_people)
        names, counts = np.unique(people[tune], return_counts=True)
        several, one = names[counts >= 2], names[counts == 1]
        rng = np.random.default_rng([seed, 3])
        for n in args.people:
            for _ in range(args.draws):
                k = int(round(n * len(several) / len(names)))
                chosen = np.concatenate([rng.choice(several, k, replace=False), rng.choice(one, n - k, replace=False)])
                rows = np.isin(people, chosen)
                tail = tail_model(x[rows], people[rows], seed)
                d = impostor_distances(x[rows], people[rows])
                gaps = tail["u"] - d[d < tail["u"]]
                taus = {"generalised Pareto": [gpd_quantile(tail["u"], tail["p_u"], tail["xi"], tail["sigma"], p)
                                               for p in wanted],
                        "exponential": [tail["u"] - gaps.mean() * np.log(tail["p_u"] / p) for p in wanted]}
                for what, tau in taus.items():
                    rate = np.searchsorted(truth, np.array(tau), side="right") / len(truth)
                    found.setdefault((what, n), []).append(rate / wanted)
                reaches.setdefault(n, []).append(int(np.floor(np.log1p(-0.01) / np.log1p(-tail["reach_p"])))
                                                 if tail["trusted"] else 0)
    print(f"\n### {args.model}: strangers named at the predicted tau / aimed at (FPIR 1 %), held-out people; "
          f"{len(args.seeds)} splits x {args.draws} draws\n")
    md_table(["tail", "validation people", "reach at FPIR 1 % (median [min, max])"]
             + [f"K = {k}: median [min, max]" for k in SIZES])
    for (what, n), ratios in found.items():
        r = np.array(ratios)
        reach = reaches[n]
        cells = [f"{np.median(c):.2f} [{c.min():.2f}, {c.max():.2f}]" for c in r.T]
        print(f"| {what} | {n} | {int(np.median(reach))} [{min(reach)}, {max(reach)}] | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
