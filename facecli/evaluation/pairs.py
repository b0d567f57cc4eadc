"""Verification on labelled pairs, measured the way FaceNet's ``validate_on_lfw`` does.

10-fold cross-validation in file order: in each fold the threshold with the
best accuracy on the other nine folds (squared L2 from 0 to 4 in steps of
0.01) is applied to the held-out fold. Also VAL@FAR (the rate of genuine
pairs accepted at a threshold giving that false-accept rate on the training
folds), ROC AUC, and the single tau that is best on all pairs (what to ship).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facecli.errors import InputError
from facecli.evaluation.embeddings import LabelledEmbedder

THRESHOLDS = np.arange(0.0, 4.0, 0.01)
#: The fewest same and different pairs the cross-validation can run on (two folds, each with one of each).
MIN_PAIRS_PER_CLASS = 2


@dataclass(frozen=True)
class Pairs:
    a: list[str]
    b: list[str]
    same: np.ndarray  # bool
    fold: np.ndarray  # int


def _read_text(path: Path) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(str(path), reason) from None


def read_lfw_pairs(pairs_file: Path, images: Path) -> Pairs:
    """LFW ``pairs.txt``: a header ``folds\\tn``, then per fold n same then n different pairs."""
    lines = [ln.split() for ln in _read_text(pairs_file).splitlines() if ln.strip()]
    try:
        n_folds, n = int(lines[0][0]), int(lines[0][1])
    except (IndexError, ValueError):
        raise InputError(str(pairs_file), "not an LFW pairs file (first line should be 'folds<TAB>pairs')") from None

    def path(name: str, number: str) -> str:
        return str(Path(images) / name / f"{name}_{int(number):04d}.jpg")

    a, b, same, fold = [], [], [], []
    for i, parts in enumerate(lines[1:]):
        if len(parts) == 3:
            a.append(path(parts[0], parts[1]))
            b.append(path(parts[0], parts[2]))
            same.append(True)
        elif len(parts) == 4:
            a.append(path(parts[0], parts[1]))
            b.append(path(parts[2], parts[3]))
            same.append(False)
        else:
            raise InputError(f"{pairs_file}:{i + 2}", "expected 'name i j' or 'name1 i name2 j'")
        fold.append(i // (2 * n))
    if len(a) != n_folds * 2 * n:
        raise InputError(str(pairs_file), f"{len(a)} pairs, the header promises {n_folds * 2 * n}")
    return Pairs(a, b, np.array(same), np.array(fold))


def read_labelled_pairs(pairs_file: Path, folds: int = 10) -> Pairs:
    """A user's own pairs: ``a.jpg b.jpg 1|0`` per line (tab-separated when paths have spaces)."""
    base = Path(pairs_file).parent
    a, b, same = [], [], []
    for i, line in enumerate(_read_text(pairs_file).splitlines()):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 3 or parts[2].strip() not in ("0", "1"):
            raise InputError(f"{pairs_file}:{i + 1}", "expected 'a.jpg b.jpg 1|0'")
        a.append(str(base / parts[0].strip()))
        b.append(str(base / parts[1].strip()))
        same.append(parts[2].strip() == "1")
    same_arr = np.array(same, dtype=bool)
    n_same, n_diff = int(same_arr.sum()), int((~same_arr).sum())
    if min(n_same, n_diff) < MIN_PAIRS_PER_CLASS:
        raise InputError(str(pairs_file), f"needs at least {MIN_PAIRS_PER_CLASS} same (1) and "
                                          f"{MIN_PAIRS_PER_CLASS} different (0) pairs (found {n_same} and {n_diff})")
    # folds stratified by label, so every fold trains and tests on both kinds of pair
    k = min(folds, n_same, n_diff)
    fold = np.empty(len(a), dtype=np.int64)
    for label in (True, False):
        where = np.flatnonzero(same_arr == label)
        fold[where] = np.arange(len(where)) % k
    return Pairs(a, b, same_arr, fold)


# -- metrics ------------------------------------------------------------------------
@dataclass(frozen=True)
class PairReport:
    """Verification accuracy on labelled pairs, as FaceNet's validate_on_lfw reports it."""

    pairs: int
    accuracy: float
    accuracy_std: float
    fold_accuracy: list[float]
    fold_tau: list[float]
    tau: float  # best on all pairs
    tau_accuracy: float
    val: float
    val_std: float
    far: float
    far_target: float
    auc: float
    images: int
    fallbacks: int  # images where no face was found and the centre crop was used
    setting: dict

    def as_dict(self) -> dict:
        return asdict(self)


def _accuracies(d: np.ndarray, same: np.ndarray) -> np.ndarray:
    """Accuracy at every threshold of THRESHOLDS (``d < t`` means same, as FaceNet)."""
    pred = d[None, :] < THRESHOLDS[:, None]
    return (pred == same[None, :]).mean(axis=1)


def kfold_accuracy(d: np.ndarray, same: np.ndarray, fold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Held-out accuracy and the chosen tau of each fold."""
    accs, taus = [], []
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        tau = THRESHOLDS[int(np.argmax(_accuracies(d[train], same[train])))]
        accs.append(float(((d[test] < tau) == same[test]).mean()))
        taus.append(float(tau))
    return np.array(accs), np.array(taus)


def val_at_far(d: np.ndarray, same: np.ndarray, fold: np.ndarray, far_target: float = 1e-3
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per fold: the threshold reaching ``far_target`` on training folds, then VAL and FAR on the test fold."""
    vals, fars = [], []
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        diff_train = d[train & ~same]
        far_train = (diff_train[None, :] < THRESHOLDS[:, None]).mean(axis=1)
        # far_train is non-decreasing in the threshold: interpolate where it crosses the target
        tau = float(np.interp(far_target, far_train, THRESHOLDS)) if far_train.max() >= far_target else 0.0
        vals.append(float((d[test & same] < tau).mean()))
        fars.append(float((d[test & ~same] < tau).mean()))
    return np.array(vals), np.array(fars)


def roc_auc(d: np.ndarray, same: np.ndarray) -> float:
    """P(a genuine pair is closer than an impostor pair), ties counted half."""
    genuine, impostor = np.sort(d[same]), np.sort(d[~same])
    below = np.searchsorted(impostor, genuine, side="left")
    ties = np.searchsorted(impostor, genuine, side="right") - below
    return float(((len(impostor) - below - ties) + 0.5 * ties).sum() / (len(genuine) * len(impostor)))


def report(d: np.ndarray, same: np.ndarray, fold: np.ndarray, far_target: float = 1e-3, images: int = 0,
           fallbacks: int = 0, setting: dict | None = None) -> PairReport:
    """Every figure of the protocol for pair distances ``d`` (folds as given)."""
    accs, taus = kfold_accuracy(d, same, fold)
    all_acc = _accuracies(d, same)
    best = int(np.argmax(all_acc))
    vals, fars = val_at_far(d, same, fold, far_target)
    return PairReport(pairs=len(d), accuracy=float(accs.mean()), accuracy_std=float(accs.std()),
                      fold_accuracy=accs.round(4).tolist(), fold_tau=taus.round(2).tolist(),
                      tau=round(float(THRESHOLDS[best]), 2), tau_accuracy=float(all_acc[best]),
                      val=float(vals.mean()), val_std=float(vals.std()), far=float(fars.mean()),
                      far_target=far_target, auc=roc_auc(d, same), images=images, fallbacks=fallbacks,
                      setting=setting or {})


def distances(pairs: Pairs, emb: dict[str, np.ndarray]) -> np.ndarray:
    a = np.stack([emb[p] for p in pairs.a])
    b = np.stack([emb[p] for p in pairs.b])
    return np.sum((a - b) ** 2, axis=1)


def evaluate_pairs(pairs: Pairs, embedder: LabelledEmbedder, far_target: float = 1e-3,
                   on_image: Callable[[], None] = lambda: None) -> tuple[PairReport, np.ndarray]:
    """Embed every image of the pairs once (cached), then the report and the pair distances."""
    paths = sorted(set(pairs.a) | set(pairs.b))
    emb, fallbacks = embedder.embed(paths, on_image)
    d = distances(pairs, emb)
    return report(d, pairs.same, pairs.fold, far_target, len(paths), fallbacks, embedder.setting), d
