"""A head's impostor tail: the smallest distances between different validation people, modelled so that identify's
tau reaches galleries of hundreds of people, and how far that model can be trusted (its reach).

Identify's tau against K people is the impostor-distance quantile at
p = 1 - (1 - FPIR)^(1/K) (``calibration``): 3.4e-5 for 300 people at FPIR 1 %.
Quantiles measured directly reach no rarer than one pair in all those the
validation people give, so the smallest distances are modelled instead (the
peaks-over-threshold method): below the quantile u at p_u (1 % of the pairs,
200 pairs at least, 20 000 at most), the gaps y = u - d follow a generalised
Pareto distribution, P(d <= u - y) = p_u (1 + xi y / sigma)^(-1 / xi),
fitted by Zhang and Stephens' estimator (Technometrics 51, 2009: closed form,
numpy only). It is unbiased where an exponential tail is 3-5 x too strict at
K >= 300 (bench/tail_study.py).

What limits the reach is less the fit than the people: the smallest
distances come from the few look-alike pairs among them, and another set of
people has other look-alikes. The validation people are resampled (a person
bootstrap, ``BOOTSTRAP`` times, seeded: the same data gives the same head)
and the model refitted on each sample; a tau is trusted while the FPIR the
resampled models give it stays within ``FACTOR`` times the target in
``CONFIDENCE`` of the samples. The reach (``reach_p``) is the rarest
probability down to which every tau is trusted; ``calibration.tau_for``
refuses beyond it. Measured on LFW (bench/ACCURACY.md, "Issue 27"): a reach
of 3-5 people for 50 validation people, 5-26 for 100, 92-295 for 250 and
262-1,332 for 535, where galleries of that size name 0.4-1.7 % of held-out
strangers for a 1 % target.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facecli.calibration import gpd_quantile

#: the share of pairs whose gaps below the threshold are modelled: 1 %, but at least 200 and at most 20 000 pairs
#: (at most 10 % of them)
SHARE, FEWEST, MOST, LARGEST_SHARE = 0.01, 200, 20_000, 0.1
#: person-bootstrap samples, the share of them that must deliver the FPIR within FACTOR times the target
BOOTSTRAP, CONFIDENCE, FACTOR = 200, 0.95, 2.0
#: the probabilities the reach is looked for on: 20 a decade from p_u down to 1e-9
STEPS_PER_DECADE, RAREST = 20, 1e-9
#: the fewest validation people a tail is fitted for (a bootstrap of two people tells nothing)
MIN_PEOPLE = 3


def threshold_share(pairs: int) -> float:
    """p_u for this many impostor pairs: 1 % of them, but at least ``FEWEST`` and at most ``MOST`` pairs."""
    return float(min(LARGEST_SHARE, max(FEWEST / pairs, min(SHARE, MOST / pairs))))


def gpd_fit(gaps: np.ndarray) -> tuple[float, float]:
    """(xi, sigma) of a generalised Pareto distribution for positive ``gaps``: Zhang and Stephens' estimator (the
    posterior mean of b = -xi / sigma over a grid, then xi from b), which needs no optimiser and always answers."""
    y = np.sort(np.asarray(gaps, dtype=np.float64))
    n = len(y)
    m = 30 + int(np.sqrt(n))
    quartile = y[max(int(n / 4 + 0.5) - 1, 0)]
    b = 1 / y[-1] + (1 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))) / (3 * quartile)
    k = np.log1p(-b[:, None] * y).mean(axis=1)
    profile = n * (np.log(-b / k) - k - 1)
    weights = 1 / np.exp(np.clip(profile - profile[:, None], -700, 700)).sum(axis=1)
    b_mean = float(np.sum(b * weights))
    xi = float(np.log1p(-b_mean * y).mean())
    return xi, -xi / b_mean


def tail_model(emb: np.ndarray, people: Sequence[str], seed: int = 0) -> dict:
    """The generalised Pareto model of the smallest impostor distances among labelled rows (``emb``: unit rows as
    they are compared), with its reach from a person bootstrap (``calibration.tau_for`` reads it). Too few people
    or pairs to fit it give a model trusted nowhere: identify's tau is then refused below ``p_u``."""
    names, person = np.unique(np.asarray(people), return_inverse=True)
    counts = np.bincount(person)
    total = int((int(counts.sum()) ** 2 - int((counts ** 2).sum())) // 2)
    share = threshold_share(max(total, 1))
    found = {"model": "generalised Pareto below u: P(d <= u - y) = p_u (1 + xi y / sigma)^(-1 / xi)",
             "pairs": total, "people": len(names), "bootstrap": BOOTSTRAP,
             "trust": f"the FPIR delivered is at most {FACTOR:g} x the target in {CONFIDENCE:.0%} of person-bootstrap "
                      "samples"}
    d, a, b = _smallest_pairs(np.asarray(emb, dtype=np.float32), person, int(np.ceil(4 * share * total)))
    fit = _fit(d, np.ones(len(d), dtype=np.int64), total, share) if len(names) >= MIN_PEOPLE and total else None
    if fit is None:
        return {**found, "u": None, "p_u": float(f"{share:.6g}"), "xi": None, "sigma": None, "exceedances": 0,
                "reach_p": float(f"{share:.6g}"), "trusted": False}
    u, p_u, xi, sigma = fit
    grid = np.logspace(np.log10(p_u), np.log10(RAREST), int(np.log10(p_u / RAREST) * STEPS_PER_DECADE) + 1)
    taus = np.array([gpd_quantile(u, p_u, xi, sigma, p) for p in grid])
    rng = np.random.default_rng([seed, 27])
    ratios = np.full((BOOTSTRAP, len(grid)), np.inf)
    for r in range(BOOTSTRAP):
        drawn = np.bincount(rng.integers(0, len(names), len(names)), minlength=len(names))
        pairs = (int((drawn * counts).sum()) ** 2 - int((drawn ** 2 * counts ** 2).sum())) // 2
        weights = drawn[a] * drawn[b]
        refit = _fit(d, weights, pairs, share) if pairs else None
        if refit is not None:
            ratios[r] = _probability(d, weights, pairs, refit, taus) / grid
    trusted = np.quantile(ratios, CONFIDENCE, axis=0, method="higher") <= FACTOR  # a failed refit: never trusted
    reach = grid[-1] if trusted.all() else grid[max(int(np.argmin(trusted)) - 1, 0)]
    return {**found, "u": round(u, 6), "p_u": float(f"{p_u:.6g}"), "xi": round(xi, 6), "sigma": round(sigma, 6),
            "exceedances": int(round(p_u * total)), "reach_p": float(f"{reach:.4g}"), "trusted": bool(trusted[0])}


def _smallest_pairs(x: np.ndarray, person: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``keep`` smallest squared distances between rows of different people, ascending, with both people."""
    found_d, found_a, found_b = [], [], []
    limit = np.inf
    for start in range(0, len(x), 1024):
        block = np.clip(2.0 - 2.0 * (x[start:start + 1024] @ x.T), 0.0, 4.0)
        rows = np.arange(start, start + len(block))
        i, j = np.nonzero((person[rows, None] != person[None, :]) & (rows[:, None] < np.arange(len(x))[None, :])
                          & (block <= limit))
        found_d.append(block[i, j])
        found_a.append(person[rows[i]])
        found_b.append(person[j])
        d = np.concatenate(found_d)
        if len(d) > 2 * keep:  # keep memory at what the tail needs
            order = np.argsort(d, kind="stable")[:keep]
            found_d, found_a, found_b = [d[order]], [np.concatenate(found_a)[order]], [np.concatenate(found_b)[order]]
            limit = float(found_d[0][-1])
    d, a, b = np.concatenate(found_d), np.concatenate(found_a), np.concatenate(found_b)
    order = np.argsort(d, kind="stable")[:keep]
    return d[order], a[order], b[order]


def _fit(d: np.ndarray, weights: np.ndarray, pairs: int, share: float) -> tuple[float, float, float, float] | None:
    """(u, p_u, xi, sigma) from the smallest distances ``d`` (ascending), each counted ``weights`` times out of
    ``pairs``; None when too few fall below the threshold."""
    cumulative = np.cumsum(weights)
    at = min(int(np.searchsorted(cumulative, share * pairs)), len(d) - 1)
    u = float(d[at])
    below = (d < u) & (weights > 0)
    gaps = np.repeat(u - d[below], weights[below])
    if len(gaps) < 10:
        return None
    xi, sigma = gpd_fit(gaps)
    return u, float(len(gaps) / pairs), xi, sigma


def _probability(d: np.ndarray, weights: np.ndarray, pairs: int, fit: tuple[float, float, float, float],
                 t: np.ndarray) -> np.ndarray:
    """P(distance <= t) for a sample's pairs: its model below its threshold u, the share of its pairs above it."""
    u, p_u, xi, sigma = fit
    z = 1 + xi * np.maximum(u - t, 0.0) / sigma
    with np.errstate(divide="ignore", over="ignore"):
        model = p_u * (np.exp(-np.maximum(u - t, 0.0) / sigma) if abs(xi) < 1e-12
                       else np.where(z > 0, np.maximum(z, 1e-300) ** (-1 / xi), 0.0))
    counted = np.concatenate([[0], np.cumsum(weights)])[np.searchsorted(d, t, side="right")] / pairs
    return np.where(t < u, model, counted)
