"""Metric learning on the user's own faces: a small head trained with the triplet loss on frozen embeddings.

``embed_people`` embeds a labelled folder as enroll would, ``train_head``
learns the head (numpy only), ``export_head`` writes it as ONNX (needs the
``onnx`` package, the ``[tune]`` extra); ``facecli.heads`` checks it and runs it
with onnxruntime (what every other command needs of a head). The names below are imported on first use (PEP 562), so
``facecli.tune.config`` (what the command line reads) stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from facecli.tune.config import DEFAULT_MARGIN, TuneConfig
    from facecli.tune.data import embed_people
    from facecli.tune.export import export_head
    from facecli.tune.head import Head, init_head
    from facecli.tune.losses import mean_triplet_loss, mine_triplets
    from facecli.tune.train import (
        EpochStats,
        Labelled,
        TuneResult,
        impostor_quantiles,
        openset_figures,
        plot_curves,
        split_people,
        train_head,
    )

_PUBLIC = {
    "DEFAULT_MARGIN": "config", "TuneConfig": "config",
    "embed_people": "data", "export_head": "export", "Head": "head", "init_head": "head",
    "mean_triplet_loss": "losses", "mine_triplets": "losses", "EpochStats": "train", "Labelled": "train",
    "TuneResult": "train", "impostor_quantiles": "train", "openset_figures": "train", "plot_curves": "train",
    "split_people": "train", "train_head": "train",
}
__all__ = ["DEFAULT_MARGIN", "EpochStats", "Head", "Labelled", "TuneConfig", "TuneResult", "embed_people",
           "export_head", "impostor_quantiles", "init_head", "mean_triplet_loss", "mine_triplets",
           "openset_figures", "plot_curves", "split_people", "train_head"]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(f"facecli.tune.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'facecli.tune' has no attribute {name!r}")
