"""Pictures of the evaluations (matplotlib, an optional dependency: the ``plot`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facecli.errors import BadValue
from facecli.extras import install_hint

if TYPE_CHECKING:
    from facecli.evaluation.openset import OpensetReport


def pyplot(out: Path):
    """matplotlib's pyplot, drawing off-screen (every facecli plot), or a BadValue saying how to install it."""
    try:
        # matplotlib: optional (the [plot] extra), loaded only to draw
        import matplotlib

        matplotlib.use("Agg")
        # matplotlib: optional (the [plot] extra), loaded only to draw
        import matplotlib.pyplot as plt
    except ImportError:
        raise BadValue("plot", out, f"needs matplotlib: {install_hint('plot')}") from None
    return plt


def plot_pairs(d: np.ndarray, same: np.ndarray, tau: float, out: Path, title: str) -> None:
    """ROC curve and the genuine/impostor distance histograms with tau marked."""
    plt = pyplot(out)
    order = np.argsort(d, kind="stable")  # every distance is a threshold: the exact ROC
    tpr = np.cumsum(same[order]) / same.sum()
    fpr = np.cumsum(~same[order]) / (~same).sum()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax1.plot(fpr, tpr)
    ax1.set_xscale("log")
    ax1.set_xlim(1e-4, 1)
    ax1.set_xlabel("false accept rate")
    ax1.set_ylabel("true accept rate")
    ax1.set_title("ROC")
    ax1.grid(True, which="both", alpha=0.3)
    bins = np.linspace(0, 4, 81)
    ax2.hist(d[same], bins=bins, alpha=0.6, label="same person")
    ax2.hist(d[~same], bins=bins, alpha=0.6, label="different people")
    ax2.axvline(tau, color="k", linestyle="--", label=f"tau = {tau:.2f}")
    ax2.set_xlabel("squared L2 distance")
    ax2.set_ylabel("pairs")
    ax2.legend()
    ax2.set_title("distance distributions")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_openset(rep: OpensetReport, out: Path, title: str) -> None:
    """FNIR against FPIR (log axes), the default tau and the FPIR targets marked."""
    plt = pyplot(out)
    fpir = np.array([c["fpir"] for c in rep.curve])
    fnir = np.array([c["fnir"] for c in rep.curve])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ok = (fpir > 0) & (fnir > 0)
    ax.plot(fpir[ok], fnir[ok], label=f"model {rep.setting.get('model', '?')}")
    d = rep.at_default_tau
    how = f"default tau {d['tau']:.2f}" if d.get("fpir_target") is not None else f"tau {d['tau']:.2f} (given)"
    ax.plot([max(d["fpir"], 1e-4)], [max(d["fnir"], 1e-4)], "ko", label=how)
    for name, p in rep.at_fpir.items():
        ax.plot([max(p["fpir"], 1e-4)], [max(p["fnir"], 1e-4)], "s", label=f"FPIR {name}: tau {p['tau']:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FPIR (strangers given a name)")
    ax.set_ylabel("FNIR (enrolled people not given their name)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
