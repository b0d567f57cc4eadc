"""Does the default 1:N threshold keep its promise (FPIR 1 %) for a new score? Checked on held-out people.

Usage: python bench/openset_calibration.py [--features ~/.cache/facecli/lfw-features.npz] [--lfw DIR] [--images DIR]
                                           [--draws 10] [--seed 20] [--splits 5]

Today's rule (calibration.tau_for): a stranger compared with K people is named with probability
1 - (1 - F(tau))^K, F being the distribution of one impostor comparison's score, stored as quantiles in
the manifest. That holds for any score that is the minimum over the gallery of a per-comparison score
(d_j plus terms of the probe alone or of person j alone), so the same code serves every rule here, with
its own quantiles:

- "raw": d_j, today's;
- "centred": d_j between (x - m) / |x - m| and (g_j - m) / |g_j - m|, m a fixed mean embedding (manifest);
- "centred + probe norm": that + gamma * (n - n_mean) / n_sd, n = the probe's raw SFace norm.

For each person split (bench/openset_scores.halves) and direction, the mean m, the norm statistics and
the impostor quantiles are measured on every cross-person pair of the selection half's images (each pair
once; in both orders for the probe-norm rule, whose score is not symmetric), and the tau for FPIR 1 % at
each K is applied to the held-out half: K = 1 and 5 (--draws x 5 draws), 100 and 500 (--draws draws) and
all of the half; and to the full shared open set (1,559 enrolled; half of it in-sample). Finally the
manifest numbers for each rule are measured on all of LFW (all 29.6 M cross-person pairs, as
bench/impostor_quantiles.py does today), with their tau at K = 1 ... 100,000 and today's own check.

Prints Markdown tables and writes bench/results/openset-calibration.json.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from common import RESULTS, md_table, parser, resolve_lfw, unit, write_results
from openset_scores import Features, Search, Study, add_study_args, half_photos, load_study

from facecli.calibration import tau_for
from facecli.evaluation import OpenSet, sub_gallery
from facecli.matching import sq_distances
from facecli.models import pipeline_spec

P_GRID = np.logspace(-7, np.log10(0.5), 36)  # as bench/impostor_quantiles.py
GAMMA = 0.03  # the probe-norm weight bench/openset_scores.py chose most often (0.02-0.04 on the halves)
TINY = (1, 5)


@dataclass(frozen=True)
class Rule:
    name: str
    centre: bool
    gamma: float


RULES = (Rule("raw (today)", False, 0.0), Rule("centred", True, 0.0), Rule("centred + probe norm", True, GAMMA))


@dataclass(frozen=True)
class Fitted:
    """What the manifest would hold for a rule: the mean to centre on, the norm statistics, the quantiles."""

    rule: Rule
    mean: np.ndarray | None
    norm_stats: tuple[float, float]
    p: np.ndarray
    d: np.ndarray
    pairs: int

    def spec(self) -> SimpleNamespace:
        """Enough of a PipelineSpec for calibration.tau_for."""
        return SimpleNamespace(name=self.rule.name, impostor={"p": self.p.tolist(), "d": self.d.tolist()})

    def tau(self, k: int, fpir: float = 0.01) -> float:
        return round(tau_for(self.spec(), k, fpir), 4)  # rounded as identify rounds it

    def probe_term(self, norms: np.ndarray) -> np.ndarray:
        return self.rule.gamma * (norms - self.norm_stats[0]) / self.norm_stats[1]


def fit(rule: Rule, f: Features, rows: np.ndarray, chunk: int = 1024) -> Fitted:
    """The rule's impostor score quantiles over every ordered cross-person pair of ``rows``."""
    x = f.fused[rows]
    mean = x.mean(0) if rule.centre else None
    if mean is not None:
        x = unit(x - mean)
    norms = f.quality["norm"][rows]
    stats = (float(norms.mean()), float(norms.std()))
    person = f.person[rows]
    fitted = Fitted(rule, mean, stats, P_GRID, np.empty(0), 0)
    term = fitted.probe_term(norms)
    parts = []
    col = np.arange(len(rows))
    for lo in range(0, len(rows), chunk):  # probes lo..lo+chunk against everyone
        d = sq_distances(x[lo:lo + chunk], x) + term[lo:lo + chunk, None]
        keep = person[lo:lo + chunk, None] != person[None, :]
        if not rule.gamma:  # a symmetric score: each pair once, as bench/impostor_quantiles.py counts them
            keep &= col[None, :] > col[lo:lo + chunk, None]
        parts.append(d[keep].astype(np.float32))
    scores = np.concatenate(parts)
    # rounded as the manifest stores them (4 significant digits, 4 decimals), so tau is identify's to the digit
    p = np.array([float(f"{v:.4g}") for v in P_GRID])
    return Fitted(rule, mean, stats, p, np.round(np.quantile(scores, P_GRID), 4), len(scores))


def measure(fitted: Fitted, f: Features, openset: OpenSet, k: int) -> dict:
    """FPIR and rank-1 of the held-out open set at the rule's default tau for K = its enrolled count."""
    s = Search.run(f, openset, "fixed" if fitted.rule.centre else "none", fitted.mean)
    score = s.top[:, 0] + fitted.probe_term(s.q_probe["norm"])
    tau = fitted.tau(k)
    return {"K": k, "tau": tau, "fpir": float(np.mean(score[~s.mated] <= tau)),
            "rank1": float(np.mean((s.correct & (score <= tau))[s.mated]))}


def held_out(study: Study, sel: int, n_draws: int) -> dict:
    f, held = study.f, study.parts[1 - sel]
    rows = np.array([f.row[p] for p in half_photos(study.parts[sel])])
    out = {}
    for rule in RULES:
        fitted = fit(rule, f, rows)
        res = []
        for k in (*TINY, 100, 500):
            n = n_draws * 5 if k in TINY else n_draws
            res += [measure(fitted, f, sub_gallery(held, k, study.seed + d), k) | {"draw": d} for d in range(n)]
        res = [r | {"set": f"K={r['K']}"} for r in res]
        res.append(measure(fitted, f, held, len(held.enrolled)) | {"draw": 0, "set": "all of the half"})
        res.append(measure(fitted, f, study.full, len(study.full.enrolled)) | {"draw": 0,
                                                                             "set": "all 1,559 (half in-sample)"})
        out[rule.name] = res
    return out


def summary(rows: list[dict]) -> dict:
    """Per K: FPIR mean, min and max over draws, and the mean rank-1 at that tau."""
    out = {}
    for key in dict.fromkeys(r["set"] for r in rows):
        sel = [r for r in rows if r["set"] == key]
        fp = np.array([r["fpir"] for r in sel])
        out[key] = {"draws": len(sel), "K": sorted({r["K"] for r in sel}),
                    "tau_mean": float(np.mean([r["tau"] for r in sel])), "fpir_mean": float(fp.mean()),
                    "fpir_min": float(fp.min()), "fpir_max": float(fp.max()),
                    "within_0.5_1.5": int(np.sum((fp >= 0.005) & (fp <= 0.015))),
                    "rank1": float(np.mean([r["rank1"] for r in sel]))}
    return out


def main() -> None:
    ap = parser(__doc__)
    add_study_args(ap)
    ap.add_argument("--out", type=Path, default=RESULTS / "openset-calibration.json")
    args = resolve_lfw(ap.parse_args())
    start = time.time()
    f, full = load_study(args)
    result: dict = {"gamma": GAMMA, "splits": {}, "manifest": {}}
    pooled: dict[str, list[dict]] = {r.name: [] for r in RULES}
    for seed in range(args.seed, args.seed + args.splits):
        study = Study(f, full, seed, args.draws)
        for sel in (0, 1):
            res = held_out(study, sel, args.draws)
            result["splits"].setdefault(seed, {})[f"fit on half {sel}, check half {1 - sel}"] = {
                name: summary(rows) for name, rows in res.items()}
            for name, rows in res.items():
                pooled[name] += rows
        print(f"split {seed} done ({time.time() - start:.0f} s)", flush=True)

    print(f"\n### default tau (FPIR 1 %) fitted on one half, FPIR measured on the other: {args.splits} splits x 2 "
          "directions\n")
    md_table(["rule", "K", "searches", "tau (mean)", "FPIR mean", "FPIR min..max", "within 0.5-1.5 %",
              "rank-1 at tau"])
    result["pooled"] = {}
    for name, rows in pooled.items():
        s = result["pooled"][name] = summary(rows)
        for key, r in s.items():
            print(f"| {name} | {key} | {r['draws']} | {r['tau_mean']:.4f} | {r['fpir_mean'] * 100:.2f} % | "
                  f"{r['fpir_min'] * 100:.2f}..{r['fpir_max'] * 100:.2f} % | {r['within_0.5_1.5']}/{r['draws']} | "
                  f"{r['rank1'] * 100:.2f} % |")

    # the manifest's numbers, measured on all of LFW (as today's impostor quantiles are)
    everyone = np.array([f.row[p] for p in half_photos(full)])
    print("\n### manifest numbers from all of LFW (in-sample check on the full open set, as today's)\n")
    md_table(["rule", "impostor comparisons", "tau K=1", "K=5", "K=100", "K=500", "K=1,559", "K=100,000",
              "FPIR at K=1,559", "rank-1 at that tau"])
    fitted_all = {}
    for rule in RULES:
        fitted = fitted_all[rule.name] = fit(rule, f, everyone)
        taus = {k: fitted.tau(k) for k in (1, 5, 100, 500, 1559, 100_000)}
        check = measure(fitted, f, full, len(full.enrolled))
        if rule.name.startswith("raw"):  # the same measurement as bench/impostor_quantiles.py made for the manifest
            shipped = np.asarray(pipeline_spec(str(np.load(args.features)["model"])).impostor["d"])
            result["raw_against_manifest"] = float(np.abs(shipped - fitted.d).max())
        result["manifest"][rule.name] = {
            "centre": None if fitted.mean is None else [round(float(v), 6) for v in fitted.mean],
            "norm": {"mean": fitted.norm_stats[0], "sd": fitted.norm_stats[1], "gamma": rule.gamma},
            "impostor": {"p": fitted.p.tolist(), "d": fitted.d.tolist()},
            "pairs": fitted.pairs, "tau": taus, "check_1559": check}
        print(f"| {rule.name} | {fitted.pairs:,} | " + " | ".join(f"{t:.4f}" for t in taus.values())
              + f" | {check['fpir'] * 100:.2f} % | {check['rank1'] * 100:.2f} % |")
    print(f"\nraw quantiles measured here against the manifest's: max difference {result['raw_against_manifest']:.4f}")
    print("\n### the same check as bench/ACCURACY.md today (quantiles from all of LFW; `eval openset --gallery-size K "
          "--seed S`)\n")
    md_table(["rule", "K", "seed", "tau", "FPIR", "rank-1 at tau"])
    result["as_today"] = {}
    for rule in RULES:
        fitted = fitted_all[rule.name]
        rows = [measure(fitted, f, sub_gallery(full, k, seed), k) | {"seed": seed} for k in (100, 500)
                for seed in range(3)] + [measure(fitted, f, full, len(full.enrolled)) | {"seed": None}]
        result["as_today"][rule.name] = rows
        for r in rows:
            print(f"| {rule.name} | {r['K']} | {'all' if r['seed'] is None else r['seed']} | {r['tau']:.4f} | "
                  f"{r['fpir'] * 100:.2f} % | {r['rank1'] * 100:.2f} % |")
    write_results(args.out, result)
    print(f"\n({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
