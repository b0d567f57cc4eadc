"""Training a head: person-disjoint split, P x K batches, Adam, early stopping on the validation people.

The people (never single photos) are split into training and validation
people. Each epoch shuffles the training people with at least two photos and
cuts them into batches of P people with up to K photos each, so every batch
holds anchor-positive pairs and many negatives for online mining. After
every epoch the validation people are searched as ``facecli eval openset``
does (first photo enrolled, the rest probes, one-photo people strangers) and
training keeps the head with the lowest FNIR at FPIR 1 %; epoch 0 is the
initial head (the base model itself when the size is kept), so a head that
never beats it is reported as such. Same data, same config: same head.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facecli.errors import FaceCliError
from facecli.evaluation import OpenSet
from facecli.evaluation.openset import openset_report
from facecli.evaluation.plots import pyplot
from facecli.tune.config import TuneConfig
from facecli.tune.head import Head, init_head
from facecli.tune.losses import batch_loss, distance_grad, sq_distance_matrix
from facecli.tune.tail import tail_model
from facecli.values import Threshold

#: the probability grid of the manifest's ``pipelines.*.impostor`` tables (bench/impostor_quantiles.py)
IMPOSTOR_P = [float(f"{v:.4g}") for v in np.logspace(-7, np.log10(0.5), 36)]


@dataclass(frozen=True)
class Labelled:
    """The base model's embeddings of a labelled folder: one row per photo, a person's rows in photo order."""

    embeddings: np.ndarray  # (N, D) unit rows
    people: Sequence[str]  # (N,) the person of each row
    model: str  # the base pipeline (``--model``) that embedded them
    ids: Sequence[str] | None = None  # (N,) content ids (image sha256) for the data set's hash

    def sha256(self) -> str:
        """The data set's content hash: its (person, image) pairs, whatever order or path they came in."""
        ids = self.ids or [hashlib.sha256(np.asarray(r, "<f4").tobytes()).hexdigest() for r in self.embeddings]
        lines = sorted(f"{p}\t{i}" for p, i in zip(self.people, ids))
        return hashlib.sha256("\n".join([self.model, *lines]).encode()).hexdigest()


@dataclass(frozen=True)
class EpochStats:
    """What the progress callback receives after each epoch (epoch 0: the initial head, before training)."""

    epoch: int
    epochs: int  # the most epochs the run may take
    loss: float | None  # mean batch loss (None at epoch 0)
    active: float | None  # mean fraction of active triplets (pairs for contrastive)
    val_fnir: float  # the validation people's FNIR at FPIR ``config.fpir``
    best_epoch: int
    best_val_fnir: float


@dataclass
class TuneResult:
    head: Head  # the best epoch's
    final_head: Head  # the last epoch's (how far training went, whatever validation said)
    config: TuneConfig
    model: str
    history: list[EpochStats]
    best_epoch: int
    train_people: list[str]
    val_people: list[str]
    train_images: int
    val_images: int
    dataset_sha256: str
    validation: dict  # open-set figures of the base model and the head on the validation people
    impostor: dict  # the head's impostor-distance quantiles on the validation people (manifest format), and their
    # tail model (``tail.tail_model``)
    default_tau: float  # the head's 1:1 tau: the best balanced accuracy on the validation people's pairs

    def metadata(self) -> dict:
        """Everything the exported head records about how it was made (JSON-ready)."""
        return {
            "base_model": self.model, "head": self.head.kind,
            "input_dim": self.head.in_dim, "output_dim": self.head.out_dim, "hidden_dim": self.head.hidden,
            "loss": self.config.loss, "margin": self.config.alpha, "mining": self.config.mining,
            "config": asdict(self.config), "epochs": self.best_epoch, "epochs_run": self.history[-1].epoch,
            "dataset_sha256": self.dataset_sha256, "train_people": len(self.train_people),
            "val_people": len(self.val_people), "train_images": self.train_images, "val_images": self.val_images,
            "validation": self.validation, "impostor": self.impostor, "default_tau": self.default_tau,
            "history": [asdict(h) for h in self.history],
        }


# -- split and validation ----------------------------------------------------------------------
def split_people(people: Sequence[str], val_fraction: float = 0.25, seed: int = 0) -> tuple[list[str], list[str]]:
    """Training and validation people (disjoint), drawn separately among one-photo and several-photo people
    so that both sides get their share of each."""
    names, counts = np.unique(np.asarray(people), return_counts=True)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for group in (names[counts >= 2], names[counts == 1]):
        if len(group) == 0:
            continue
        n_val = int(round(val_fraction * len(group)))
        picked = set(rng.permutation(len(group))[:n_val].tolist())
        val += [str(n) for i, n in enumerate(group) if i in picked]
        train += [str(n) for i, n in enumerate(group) if i not in picked]
    return sorted(train), sorted(val)


def _openset(people: np.ndarray, seed: int):
    """``facecli eval openset``'s split of the validation rows (keys: row numbers as strings).

    With no one-photo person to act as a stranger, every other several-photo
    person (in a seeded order) becomes one, through their first photo.
    """
    names, first, counts = np.unique(people, return_index=True, return_counts=True)
    strangers = set(names[counts == 1].tolist())
    if not strangers:
        order = np.random.default_rng([seed, 2]).permutation(len(names))
        strangers = {str(names[i]) for i in order[: len(names) // 2]}
    enrolled: dict[str, list[str]] = {}
    probes: list[tuple[str, str]] = []
    stranger_rows: list[str] = []
    for name, row in zip(names.tolist(), first.tolist()):
        if name in strangers:
            stranger_rows.append(str(row))
            continue
        enrolled[name] = [str(row)]
        probes += [(str(r), name) for r in np.flatnonzero(people == name).tolist() if r != row]
    if not enrolled or not stranger_rows:
        raise FaceCliError("validation people", "they must hold at least one person with two photos and one "
                                                "stranger: give more people, or a larger validation fraction")
    return OpenSet(enrolled, probes, stranger_rows)


def openset_figures(emb: np.ndarray, people: np.ndarray, seed: int = 0, targets: Sequence[float] = (0.01, 0.001),
                    default_tau: float | None = None) -> dict:
    """``facecli.evaluation.openset_report`` on labelled rows (first row of each person enrolled), without its
    curve; ``at_default_tau`` only when a ``default_tau`` is given."""
    rep = openset_report({str(i): v for i, v in enumerate(emb)}, _openset(np.asarray(people), seed),
                         Threshold(2.0 if default_tau is None else default_tau), targets).as_dict()
    for key in ("curve", "setting", "seed", "fallbacks") + (("at_default_tau",) if default_tau is None else ()):
        rep.pop(key)
    return rep


def impostor_quantiles(emb: np.ndarray, people: Sequence[str], what: str) -> dict:
    """The manifest's ``impostor`` table from every pair of rows of different people.

    Only the probabilities of at least one pair are kept, so
    ``calibration.tau_for`` refuses targets rarer than the data can tell.
    """
    _, person = np.unique(np.asarray(people), return_inverse=True)
    x = np.asarray(emb, dtype=np.float32)
    parts = []
    for start in range(0, len(x), 2048):
        block = np.clip(2.0 - 2.0 * (x[start:start + 2048] @ x.T), 0.0, 4.0)
        i, j = np.nonzero((person[start:start + 2048, None] != person[None, :])
                          & (np.arange(start, start + len(block))[:, None] < np.arange(len(x))[None, :]))
        parts.append(block[i, j])
    d = np.concatenate(parts)
    if d.size == 0:
        raise FaceCliError("validation people", "there must be at least two of them: give more people, or a "
                                                "larger validation fraction")
    p = [v for v in IMPOSTOR_P if v * d.size >= 1.0]
    q = np.quantile(d, p)
    return {"what": "quantiles of the squared L2 distance between photos of different people: P(d <= d[i]) = p[i]",
            "measured_on": what, "pairs": int(d.size), "p": p, "d": [round(float(v), 4) for v in q]}


def balanced_tau(emb: np.ndarray, people: Sequence[str]) -> float:
    """The threshold (0.01 grid) with the best mean of the genuine and impostor pair accuracies."""
    _, person = np.unique(np.asarray(people), return_inverse=True)
    dist = sq_distance_matrix(np.asarray(emb, dtype=np.float64))
    i, j = np.triu_indices(len(person), 1)
    same = person[i] == person[j]
    genuine, impostor = np.sort(dist[i, j][same]), np.sort(dist[i, j][~same])
    if not genuine.size or not impostor.size:
        return float("nan")
    taus = np.arange(0.0, 4.0, 0.01)
    score = np.searchsorted(genuine, taus, side="left") / genuine.size \
        + (impostor.size - np.searchsorted(impostor, taus, side="left")) / impostor.size
    return round(float(taus[int(np.argmax(score))]), 2)


# -- training ----------------------------------------------------------------------------------
class Adam:
    """Adam (Kingma & Ba) with the usual betas, in float32."""

    def __init__(self, params: list[np.ndarray], lr: float, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        self.lr, self.beta1, self.beta2, self.eps, self.t = lr, beta1, beta2, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        c1, c2 = 1 - self.beta1 ** self.t, 1 - self.beta2 ** self.t
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            p -= (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)


def batches(rows_of: list[np.ndarray], per_batch: int, per_person: int, rng: np.random.Generator
            ) -> list[np.ndarray]:
    """One epoch: every person once, P per batch (a last batch of one joins the previous), up to K photos each."""
    order = rng.permutation(len(rows_of))
    groups = [order[i:i + per_batch] for i in range(0, len(order), per_batch)]
    if len(groups) > 1 and len(groups[-1]) < 2:
        last = groups.pop()
        groups[-1] = np.concatenate([groups[-1], last])
    return [np.concatenate([rng.choice(rows_of[i], min(per_person, len(rows_of[i])), replace=False) for i in g])
            for g in groups]


def train_head(data: Labelled, config: TuneConfig = TuneConfig(),
               progress: Callable[[EpochStats], None] | None = None) -> TuneResult:
    """Learn a head on ``data``'s training people; keep the epoch best on its validation people."""
    config.check()
    x = np.asarray(data.embeddings, dtype=np.float32)
    people = np.asarray(data.people)
    if x.ndim != 2 or len(x) != len(people):
        raise FaceCliError("tuning set", "one person per embedding row is needed")
    train_people, val_people = split_people(people, config.val_fraction, config.seed)
    train_mask, val_mask = np.isin(people, train_people), np.isin(people, val_people)
    rows_of = [r for r in (np.flatnonzero(people == n) for n in train_people) if len(r) >= 2]
    if len(rows_of) < 2:
        raise FaceCliError("tuning set", f"needs at least 2 training people with two photos or more "
                                         f"(found {len(rows_of)})")
    x_val, people_val = x[val_mask], people[val_mask]
    labels = np.unique(people, return_inverse=True)[1]

    head = init_head(config.head, x.shape[1], config.out_dim, x[train_mask])
    start = head.copy()
    opt = Adam(head.params, config.learning_rate)
    rng = np.random.default_rng([config.seed, 1])

    def validate(h: Head) -> float:
        rep = openset_figures(h.forward(x_val), people_val, config.seed, (config.fpir,))
        return float(rep["at_fpir"][f"{config.fpir:g}"]["fnir"])

    best, best_epoch = head.copy(), 0
    best_fnir = validate(head)
    history = [EpochStats(0, config.epochs, None, None, best_fnir, 0, best_fnir)]
    if progress:
        progress(history[-1])
    for epoch in range(1, config.epochs + 1):
        losses, actives = [], []
        for rows in batches(rows_of, config.people_per_batch, config.images_per_person, rng):
            y, cache = head.forward_train(x[rows])
            res = batch_loss(config.loss, sq_distance_matrix(y), labels[rows], config.alpha, config.mining)
            grads = head.backward(cache, distance_grad(res.grad, y).astype(np.float32))
            if config.weight_decay:
                grads = [g + config.weight_decay * (p - p0) for g, p, p0 in zip(grads, head.params, start.params)]
            opt.step(head.params, grads)
            losses.append(res.loss)
            actives.append(res.active)
        fnir = validate(head)
        if fnir < best_fnir:
            best, best_epoch, best_fnir = head.copy(), epoch, fnir
        history.append(EpochStats(epoch, config.epochs, float(np.mean(losses)), float(np.mean(actives)), fnir,
                                  best_epoch, best_fnir))
        if progress:
            progress(history[-1])
        if epoch - best_epoch >= config.patience:
            break

    targets = tuple(sorted({config.fpir, 0.01, 0.001}, reverse=True))
    out_val = best.forward(x_val)
    validation = {"people": len(val_people), "images": int(val_mask.sum()), "fpir": config.fpir,
                  "base": openset_figures(x_val, people_val, config.seed, targets),
                  "head": openset_figures(out_val, people_val, config.seed, targets)}
    return TuneResult(
        head=best, final_head=head, config=config, model=data.model, history=history, best_epoch=best_epoch,
        train_people=train_people, val_people=val_people, train_images=int(train_mask.sum()),
        val_images=int(val_mask.sum()), dataset_sha256=data.sha256(), validation=validation,
        impostor={**impostor_quantiles(out_val, people_val, f"the {len(val_people)} validation people of the tuning "
                                                            f"set ({int(val_mask.sum())} photos), with the head"),
                  "tail": tail_model(out_val, people_val, config.seed)},
        default_tau=balanced_tau(out_val, people_val))


def plot_curves(result: TuneResult, out: Path) -> None:
    """The training loss and active fraction, and the validation FNIR per epoch, the kept epoch marked."""
    plt = pyplot(out)
    hist = result.history[1:]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    epochs = [h.epoch for h in hist]
    ax1.plot(epochs, [h.loss for h in hist], label="loss (active triplets)")
    ax1.plot(epochs, [h.active for h in hist], label="active fraction")
    ax1.set_xlabel("epoch")
    ax1.legend()
    ax1.set_title(f"{result.config.loss} loss, {result.config.mining} mining, margin {result.config.alpha:g}")
    ax2.plot([h.epoch for h in result.history], [h.val_fnir for h in result.history], marker=".")
    ax2.axvline(result.best_epoch, color="k", linestyle="--", label=f"kept: epoch {result.best_epoch}")
    ax2.axhline(result.history[0].val_fnir, color="grey", linestyle=":", label="epoch 0 (initial head)")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel(f"FNIR at FPIR {result.config.fpir:g}")
    ax2.legend()
    ax2.set_title(f"validation: {len(result.val_people)} people")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
