"""Measuring accuracy: the LFW / labelled-pairs protocol, the open-set 1:N protocol, their plots.

- ``pairs``: reading pair files, the 10-fold metrics, ``evaluate_pairs``;
- ``openset``: the open-set split, its figures, ``evaluate_openset``;
- ``embeddings``: one cached embedding per labelled image (``LabelledEmbedder``);
- ``plots``: ROC / histograms and the FNIR-FPIR trade-off.

Reports are frozen dataclasses: the CLI renders them, nobody edits them.
"""

from facecli.evaluation.embeddings import LabelledEmbedder
from facecli.evaluation.openset import OpenSet, OpensetReport, evaluate_openset, read_openset, sub_gallery
from facecli.evaluation.pairs import (
    PairReport,
    Pairs,
    evaluate_pairs,
    kfold_accuracy,
    read_labelled_pairs,
    read_lfw_pairs,
    report,
    roc_auc,
)

__all__ = ["LabelledEmbedder", "OpenSet", "OpensetReport", "PairReport", "Pairs", "evaluate_openset",
           "evaluate_pairs", "kfold_accuracy", "read_labelled_pairs", "read_lfw_pairs", "read_openset", "report",
           "roc_auc", "sub_gallery"]
