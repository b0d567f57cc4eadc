"""`verify --claim` with the gallery as a cohort (issue 20): does normalising a pair's distance help 1:1?

Usage: python bench/verify_cohort.py [--features ~/.cache/facecli/lfw-features.npz] [--lfw DIR] [--pairs FILE]

LFW's pair protocol (evaluation.read_lfw_pairs, 10 person-disjoint folds). A pair (a, b) stands for a
claim: a is the claimed person's enrolled photo, b the photo presented. The "gallery" of a pair in fold k
is one photo (the first) of every person of the other nine folds, or a random K of them: the people
enrolled besides the claimed one. Scores (lower = same person):

- raw: d(a, b), today's;
- T-shift: d - beta * mean of b's k nearest cohort distances; Z-shift: the same for a (at enrolment);
  S-shift: d - beta * (both means) / 2; T-norm / S-norm: standardised by the cohort's mean and spread;
- centred: d between (a - m) and (b - m), renormalised, m = the mean of the other folds' photos.

Nested choice: for each test fold, the parameters (beta, k) of best accuracy on the nine other folds (at
their best threshold) are kept, and the test fold is decided with the threshold those nine folds pick
(evaluation.kfold_accuracy), exactly as `facecli eval lfw` picks tau. Scores
other than raw are mapped affinely (label-free) onto raw's range, so the 0.01 threshold grid has the
same resolution. AUC and VAL at FAR 1e-3 (evaluation.val_at_far, its threshold from the training folds) are
those of the parameters most folds chose. Prints tables and writes bench/results/verify-cohort.json.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from common import RESULTS, md_table, parser, resolve_lfw, unit, write_results
from openset_scores import Features, add_study_args

from facecli.evaluation.pairs import _accuracies, distances, kfold_accuracy, read_lfw_pairs, roc_auc, val_at_far
from facecli.matching import sq_distances

COHORT_SIZES = (100, 500, 0)  # 0: every person of the other nine folds
KS = (10, 50, 0)  # cohort depth: the k nearest (0: all)
BETAS = tuple(float(b) for b in np.round(np.arange(0.0, 1.0001, 0.1), 1))


def cohort_stats(x: np.ndarray, cohort: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each row of x: mean and spread of its k nearest cohort distances, for k in KS."""
    d = sq_distances(x, cohort).astype(np.float64)
    out = {}
    for k in KS:
        top = d if k == 0 or k >= d.shape[1] else np.partition(d, k - 1, axis=1)[:, :k]
        out[k] = (top.mean(1), top.std(1))
    return out


def mapped(s: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``s`` moved and scaled to ``ref``'s mean and spread (no labels used); ``ref`` itself stays as it is."""
    if s is ref:
        return ref
    return (s - s.mean()) / s.std() * ref.std() + ref.mean()


def shifted(raw: np.ndarray, beta: float, by: np.ndarray) -> np.ndarray:
    """raw - beta * by, mapped onto raw's range (beta 0: raw exactly)."""
    return raw if beta == 0 else mapped(raw - beta * by, raw)


def main() -> None:
    ap = parser(__doc__)
    add_study_args(ap, splits=False)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "verify-cohort.json")
    args = resolve_lfw(ap.parse_args())
    start = time.time()
    f = Features.load(args.features)
    pairs = read_lfw_pairs(args.pairs, args.images)
    ra = np.array([f.row[str(Path(p).relative_to(args.images))] for p in pairs.a])
    rb = np.array([f.row[str(Path(p).relative_to(args.images))] for p in pairs.b])
    x = f.fused.astype(np.float64)
    raw = distances(pairs, {p: f.fused[r] for p, r in zip(pairs.a + pairs.b, np.r_[ra, rb])}).astype(np.float64)
    folds = np.unique(pairs.fold)
    # the first photo (by name) of each person of each fold: the dump's rows are sorted by path
    first: dict[int, dict[str, int]] = {int(k): {} for k in folds}
    for a, b, k in zip(ra, rb, pairs.fold):
        for r in (int(a), int(b)):
            person = str(f.person[r])
            first[int(k)][person] = min(r, first[int(k)].get(person, r))
    rng = np.random.default_rng(args.seed)

    # every score family: name -> {params: (n_pairs,) score}, per cohort size
    result: dict = {"pairs": len(raw), "cohorts": {}}
    for size in COHORT_SIZES:
        fam: dict[str, dict[tuple, np.ndarray]] = {}
        t_stats = {kk: (np.empty(len(raw)), np.empty(len(raw))) for kk in KS}
        z_stats = {kk: (np.empty(len(raw)), np.empty(len(raw))) for kk in KS}
        centred = np.empty(len(raw))
        for k in folds:
            mine = pairs.fold == k
            others = np.array([r for kk, people in first.items() if kk != k for r in people.values()])
            cohort_rows = others
            if size:
                cohort_rows = rng.choice(cohort_rows, size, replace=False)
            for stats, rows in ((t_stats, rb[mine]), (z_stats, ra[mine])):
                for kk, (m, s) in cohort_stats(x[rows], x[cohort_rows]).items():
                    stats[kk][0][mine], stats[kk][1][mine] = m, s
            mean = x[others].mean(0)  # the other folds' people: a fixed mean from people not in this fold
            centred[mine] = sq_distances(unit(x[ra[mine]] - mean), unit(x[rb[mine]] - mean)).diagonal()
        fam["raw distance (today)"] = {(): raw}
        fam["centred (other folds' mean)"] = {(): mapped(centred, raw)}
        fam["T-shift (probe's cohort)"] = {(kk, b): shifted(raw, b, t_stats[kk][0]) for kk in KS for b in BETAS}
        fam["Z-shift (claimed person's cohort)"] = {(kk, b): shifted(raw, b, z_stats[kk][0])
                                                    for kk in KS for b in BETAS}
        fam["S-shift (both)"] = {(kk, b): shifted(raw, b, (t_stats[kk][0] + z_stats[kk][0]) / 2)
                                 for kk in KS for b in BETAS}
        fam["T-norm"] = {(kk,): mapped((raw - t_stats[kk][0]) / t_stats[kk][1], raw) for kk in KS}
        fam["S-norm"] = {(kk,): mapped((raw - t_stats[kk][0]) / t_stats[kk][1] + (raw - z_stats[kk][0])
                                       / z_stats[kk][1], raw) for kk in KS}
        rows = {}
        for name, grid in fam.items():
            rows[name] = nested(grid, pairs.same, pairs.fold)
        result["cohorts"][size or "all"] = rows
        label = f"K = {size}" if size else "K = all other folds' people"
        print(f"\n### cohort: {label} ({time.time() - start:.0f} s)\n")
        md_table(["score", "10-fold accuracy (nested)", "chosen per fold", "AUC", "VAL @ FAR 1e-3 (FAR)"])
        for name, r in rows.items():
            print(f"| {name} | {r['accuracy'] * 100:.2f} % ± {r['accuracy_std'] * 100:.2f} | {r['chosen']} | "
                  f"{r['auc']:.5f} | {r['val'] * 100:.2f} % ({r['far'] * 100:.2f} %) |")
    write_results(args.out, result)
    print(f"\n({time.time() - start:.0f} s)")


def best_accuracy(s: np.ndarray, same: np.ndarray) -> float:
    """Accuracy at the best threshold of the library's grid (``s < t`` means same, as FaceNet)."""
    return float(_accuracies(s, same).max())


def nested(grid: dict[tuple, np.ndarray], same: np.ndarray, fold: np.ndarray) -> dict:
    """Per test fold: the parameters of best accuracy on the other folds, then their tau on the test fold."""
    accs, chosen = [], []
    folds = list(np.unique(fold))
    for k in folds:
        train = fold != k
        # max() keeps the first of equals: the simplest parameters (the grid starts at beta 0)
        best = max(grid, key=lambda p, train=train: best_accuracy(grid[p][train], same[train]))
        held, _ = kfold_accuracy(grid[best], same, fold)
        accs.append(float(held[folds.index(k)]))
        chosen.append(best)
    common = max(set(chosen), key=chosen.count)
    vals, fars = val_at_far(grid[common], same, fold)
    return {"accuracy": float(np.mean(accs)), "accuracy_std": float(np.std(accs)), "fold_accuracy": accs,
            "chosen": [list(c) for c in chosen] if len(set(chosen)) > 1 else list(common),
            "auc": roc_auc(grid[common], same), "val": float(vals.mean()), "far": float(fars.mean())}


if __name__ == "__main__":
    main()
