"""Thresholds for 1:N that respect the gallery's size.

A stranger searched against K enrolled people gets K chances to fall within
tau. If one impostor comparison falls within tau with probability F(tau),
the stranger is given a name with probability 1 - (1 - F(tau))^K (FPIR). So
the tau for a target FPIR is the quantile of the impostor distances at
p = 1 - (1 - FPIR)^(1/K). The manifest stores those quantiles, measured on
all 29.6 M cross-person pairs of LFW; on LFW's open-set protocol (1 559
people) this predicts tau 0.654 for FPIR 1 % where 0.664 was measured, and
0.528 for 0.1 % where 0.524 was measured (bench/ACCURACY.md).

A projection head is measured on its few validation people: below the
quantile at ``p_u`` its table gives way to a model of the smallest distances
(``tail``: a generalised Pareto distribution, ``facecli.tune.tail``), trusted
down to the probability ``reach_p`` and refused beyond it. A head written
before the model has the table alone, which reaches its rarest probability.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from facecli.errors import BadValue

if TYPE_CHECKING:
    from facecli.models import PipelineSpec

DEFAULT_FPIR = 0.01  # identify names at most 1 stranger in 100 unless told otherwise


def check_fpir(fpir: float) -> float:
    """An FPIR target: a share of strangers, strictly between 0 and 1 (the one check every caller makes)."""
    if not 0 < fpir < 1:
        raise BadValue("fpir", fpir, "must be between 0 and 1")
    return float(fpir)


def impostor_probability(fpir: float, gallery_size: int) -> float:
    """The single-comparison false-match rate that gives ``fpir`` against ``gallery_size`` people."""
    return -math.expm1(math.log1p(-fpir) / gallery_size)


def tau_for(spec: PipelineSpec, gallery_size: int, fpir: float = DEFAULT_FPIR) -> float:
    """The tau whose expected FPIR against ``gallery_size`` people is ``fpir``."""
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    import numpy as np

    check_fpir(fpir)
    if gallery_size < 1:
        raise BadValue("gallery_size", gallery_size, "must be at least 1")
    table = spec.impostor
    if not table:
        raise BadValue("model", spec.name, "its manifest entry has no impostor distances to calibrate with; "
                                           "give a tau")
    wanted = impostor_probability(fpir, gallery_size)
    tail = table.get("tail")
    if tail is not None and wanted < tail["p_u"]:
        if not tail["trusted"] or wanted < tail["reach_p"]:
            raise BadValue("fpir", f"{fpir} with {gallery_size} people",
                           f"{spec.name} is calibrated for galleries of up to {largest_gallery(spec, fpir)} people "
                           f"at this FPIR (the smallest distances between its {tail['people']} validation people "
                           "tell no further): give a tau, or tune with more validation people")
        return max(0.0, gpd_quantile(tail["u"], tail["p_u"], tail["xi"], tail["sigma"], wanted))
    p = np.log10(np.asarray(table["p"], dtype=float))
    d = np.asarray(table["d"], dtype=float)
    target = math.log10(wanted)
    if target < p[0]:
        raise BadValue("fpir", f"{fpir} with {gallery_size} people",
                       f"needs impostor distances rarer than 1 in {1 / 10 ** p[0]:.0e} comparisons, "
                       f"beyond what the measurements of {spec.name} cover (give a tau)")
    return float(np.interp(target, p, d))


def gpd_quantile(u: float, p_u: float, xi: float, sigma: float, p: float) -> float:
    """The distance below which a share ``p`` (< ``p_u``) of pairs fall when the gaps under the threshold ``u`` (the
    quantile at ``p_u``) follow a generalised Pareto distribution of shape ``xi`` and scale ``sigma``."""
    ratio = p_u / p
    return u - (sigma / xi * (ratio ** xi - 1) if abs(xi) > 1e-12 else sigma * math.log(ratio))


def largest_gallery(spec: PipelineSpec, fpir: float = DEFAULT_FPIR) -> int:
    """The most people ``tau_for`` can calibrate a gallery for at ``fpir`` from ``spec``'s impostor distances (the
    reach of their tail model, else their rarest quantile); 0 when it has none."""
    table = spec.impostor
    tail = table.get("tail") if table else None
    if tail is not None:
        if not tail["trusted"]:
            return 0
        rarest = tail["reach_p"]
    elif not table or not table.get("p"):
        return 0
    else:
        rarest = min(table["p"])
    return int(math.floor(math.log1p(-fpir) / math.log1p(-rarest) + 1e-9))
