"""Measure verification accuracy the way FaceNet's ``validate_on_lfw`` does.

10-fold cross-validation in file order: in each fold the threshold with the
best accuracy on the other nine folds (squared L2 from 0 to 4 in steps of
0.01) is applied to the held-out fold. Also VAL@FAR (the rate of genuine
pairs accepted at a threshold giving that false-accept rate on the training
folds), ROC AUC, and the single tau that is best on all pairs (what to ship).

Embeddings are cached per image content hash and pipeline setting, so a
re-run costs nothing and variants that share a detector share its detections.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facecli.alignment import center_crop
from facecli.detection import Detection
from facecli.embedding import Embedder, FaceEmbedder
from facecli.errors import InputError
from facecli.imageio import decode, read_bytes
from facecli.paths import cache_dir
from facecli.sources import sha256_bytes

THRESHOLDS = np.arange(0.0, 4.0, 0.01)


# -- pairs ------------------------------------------------------------------------
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
    if same_arr.all() or not same_arr.any():
        raise InputError(str(pairs_file), "needs both same (1) and different (0) pairs")
    k = max(2, min(folds, len(a) // 2))
    return Pairs(a, b, same_arr, np.arange(len(a)) % k)


# -- metrics ------------------------------------------------------------------------
@dataclass
class Report:
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
    images: int = 0
    fallbacks: int = 0
    setting: dict | None = None

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


def report(d: np.ndarray, same: np.ndarray, fold: np.ndarray, far_target: float = 1e-3) -> Report:
    accs, taus = kfold_accuracy(d, same, fold)
    all_acc = _accuracies(d, same)
    best = int(np.argmax(all_acc))
    vals, fars = val_at_far(d, same, fold, far_target)
    return Report(pairs=len(d), accuracy=float(accs.mean()), accuracy_std=float(accs.std()),
                  fold_accuracy=accs.round(4).tolist(), fold_tau=taus.round(2).tolist(),
                  tau=round(float(THRESHOLDS[best]), 2), tau_accuracy=float(all_acc[best]),
                  val=float(vals.mean()), val_std=float(vals.std()), far=float(fars.mean()),
                  far_target=far_target, auc=roc_auc(d, same))


# -- embeddings with a cache ------------------------------------------------------------
def central_face(faces: Sequence[Detection], shape: tuple[int, ...]) -> Detection:
    """FaceNet's choice among several faces: the largest, penalised by its offset from the centre."""
    cy, cx = shape[0] / 2, shape[1] / 2

    def merit(f: Detection) -> float:
        ox = (f.box[0] + f.box[2]) / 2 - cx
        oy = (f.box[1] + f.box[3]) / 2 - cy
        return f.area - 2.0 * (ox * ox + oy * oy)

    return max(faces, key=merit)


class EmbeddingCache:
    """(setting, image sha256) -> embedding and whether the centre-crop fallback was used.

    Detections are cached on their own, keyed by the detector's setting, so
    variants that change only the margin or flip skip detection.
    """

    def __init__(self, path: Path | None = None) -> None:
        path = path or cache_dir() / "eval-embeddings.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=60, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS emb (setting TEXT, sha TEXT, vec BLOB, fallback INT, "
                           "PRIMARY KEY (setting, sha))")
        self._conn.execute("CREATE TABLE IF NOT EXISTS det (setting TEXT, sha TEXT, box TEXT, "
                           "PRIMARY KEY (setting, sha))")

    def get_box(self, setting: str, sha: str) -> tuple[bool, Detection | None]:
        """(cached?, the chosen face or None when the detector found none)."""
        row = self._conn.execute("SELECT box FROM det WHERE setting = ? AND sha = ?", (setting, sha)).fetchone()
        if row is None:
            return False, None
        saved = json.loads(row[0])
        if saved is None:
            return True, None
        if isinstance(saved, list):  # saved before landmarks were kept
            return True, Detection(tuple(saved), 1.0)
        points = saved.get("landmarks")
        return True, Detection(tuple(saved["box"]), 1.0, None if points is None else np.asarray(points))

    def put_box(self, setting: str, sha: str, det: Detection | None) -> None:
        saved = None if det is None else {
            "box": list(det.box), "landmarks": None if det.landmarks is None else np.asarray(det.landmarks).tolist()}
        self._conn.execute("INSERT OR REPLACE INTO det VALUES (?, ?, ?)", (setting, sha, json.dumps(saved)))

    def get(self, setting: str, sha: str) -> tuple[np.ndarray, bool] | None:
        row = self._conn.execute("SELECT vec, fallback FROM emb WHERE setting = ? AND sha = ?",
                                 (setting, sha)).fetchone()
        return None if row is None else (np.frombuffer(row[0], dtype="<f4"), bool(row[1]))

    def put_many(self, setting: str, rows: list[tuple[str, np.ndarray, bool]]) -> None:
        self._conn.execute("BEGIN")
        self._conn.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?, ?)",
                               [(setting, sha, np.asarray(v, "<f4").tobytes(), int(fb)) for sha, v, fb in rows])
        self._conn.execute("COMMIT")


def setting_key(setting: dict) -> str:
    return hashlib.sha256(json.dumps(setting, sort_keys=True).encode()).hexdigest()[:24]


def detector_setting(name: str, detector) -> dict:
    """The cache key of a detector's choices: its name and its numeric and text settings."""
    return {"detector": name,
            "detector_args": {k: v for k, v in vars(detector).items() if isinstance(v, (int, float, str, tuple))}}


def part_setting(part: Embedder, detector_setting: dict) -> dict:
    """The cache key of one model's embeddings: the model, its crop and the detector that placed it."""
    setting = {"model": part.spec.sha256, "margin": part.margin, "flip": part.flip, **detector_setting}
    if part.alignment != "box-margin":
        setting["alignment"] = part.alignment
    return setting


def embed_for_eval(paths: Sequence[str], detector, embedder: FaceEmbedder, detector_setting: dict,
                   on_image: Callable[[], None] = lambda: None,
                   cache: EmbeddingCache | None = None) -> tuple[dict[str, np.ndarray], int]:
    """One embedding per image (its central face, else a centre crop); returns them and the fallback count.

    Each model's embeddings are cached on their own, so a fusion reuses what
    its single models have computed, and detections are cached per detector.
    """
    cache = cache or EmbeddingCache()
    keys = [setting_key(part_setting(p, detector_setting)) for p in embedder.parts]
    det_key = setting_key(detector_setting)
    landmarks = embedder.needs_landmarks()
    found: list[dict[str, np.ndarray]] = [{} for _ in embedder.parts]
    fell_back: set[str] = set()
    todo: list[list[tuple[str, str, np.ndarray, bool]]] = [[] for _ in embedder.parts]  # path, sha, crop, fallback

    def flush(part: int) -> None:
        rows = todo[part]
        if not rows:
            return
        emb = embedder.parts[part].embed(np.stack([t[2] for t in rows]))
        cache.put_many(keys[part], [(sha, v, fb) for (_, sha, _, fb), v in zip(rows, emb)])
        for (p, _, _, _), v in zip(rows, emb):
            found[part][p] = v
        rows.clear()

    for p in paths:
        data = read_bytes(p)
        sha = sha256_bytes(data)
        image = face = None
        for i, part in enumerate(embedder.parts):
            hit = cache.get(keys[i], sha)
            if hit is not None:
                found[i][p] = hit[0]
                if hit[1]:
                    fell_back.add(p)
                continue
            if image is None:
                image = decode(data, p)
                cached, face = cache.get_box(det_key, sha)
                if not cached or (landmarks and face is not None and face.landmarks is None):
                    faces = detector.detect(image)
                    face = central_face(faces, image.shape) if faces else None
                    cache.put_box(det_key, sha, face)
            if face is not None:
                crop, fb = part.crop(image, face), False
            else:
                crop, fb = center_crop(image, part.size), True
                fell_back.add(p)
            todo[i].append((p, sha, crop, fb))
            if len(todo[i]) >= part.batch_size:
                flush(i)
        on_image()
    for i in range(len(embedder.parts)):
        flush(i)
    return {p: embedder.fuse([f[p] for f in found]) for p in paths}, len(fell_back)


def distances(pairs: Pairs, emb: dict[str, np.ndarray]) -> np.ndarray:
    a = np.stack([emb[p] for p in pairs.a])
    b = np.stack([emb[p] for p in pairs.b])
    return np.sum((a - b) ** 2, axis=1)


def _pyplot(out: Path):
    """matplotlib's pyplot, drawing off-screen, or an InputError saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError(f"--plot {out}", "needs matplotlib: pip install -e '.[plot]'") from None
    return plt


def plot(d: np.ndarray, same: np.ndarray, tau: float, out: Path, title: str) -> None:
    """ROC curve and the genuine/impostor distance histograms with tau marked."""
    plt = _pyplot(out)
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


# -- open-set identification (1:N with strangers) ------------------------------------
@dataclass(frozen=True)
class OpenSet:
    """A labelled folder split for 1:N: enrolled photos, probes of enrolled people, strangers."""

    enrolled: dict[str, list[str]]  # person -> enrolled photos
    probes: list[tuple[str, str]]  # (photo, person): mated searches
    strangers: list[str]  # one photo per person who is not enrolled


def read_openset(images: Path, enroll: int = 1) -> OpenSet:
    """``images/<person>/<photos>``: people with more than ``enroll`` photos are enrolled with their first
    ``enroll`` (sorted by name) and probed with the rest; the others are strangers (their first photo)."""
    from facecli.api import IMAGE_SUFFIXES

    root = Path(images)
    if not root.is_dir():
        raise InputError(str(root), "not a directory (expected <person>/<photos>)")
    enrolled: dict[str, list[str]] = {}
    probes: list[tuple[str, str]] = []
    strangers: list[str] = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(str(f) for f in person.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if len(photos) > enroll:
            enrolled[person.name] = photos[:enroll]
            probes += [(p, person.name) for p in photos[enroll:]]
        elif photos:
            strangers.append(photos[0])
    if not enrolled or not strangers:
        raise InputError(str(root), f"needs people with more than {enroll} photos and people with fewer "
                                    f"(found {len(enrolled)} and {len(strangers)})")
    return OpenSet(enrolled, probes, strangers)


def sub_gallery(openset: OpenSet, size: int, seed: int = 0) -> OpenSet:
    """``size`` enrolled people drawn at random, with their probes; the strangers stay the same."""
    names = list(openset.enrolled)
    if not 1 <= size <= len(names):
        raise InputError(f"--gallery-size {size}", f"must be between 1 and {len(names)} (the people enrollable)")
    keep = {names[i] for i in np.random.default_rng(seed).choice(len(names), size, replace=False)}
    return OpenSet({n: ps for n, ps in openset.enrolled.items() if n in keep},
                   [(p, n) for p, n in openset.probes if n in keep], openset.strangers)


def _nearest(emb: dict[str, np.ndarray], openset: OpenSet, photos: Sequence[str],
             templates: str = "mean") -> tuple[np.ndarray, list[str]]:
    """Each photo's distance to its nearest enrolled person (as identify measures it) and that person."""
    from facecli.gallery import TemplateMatrix
    from facecli.matching import person_distances

    names = list(openset.enrolled)
    rows = [(i, p) for i, n in enumerate(names) for p in openset.enrolled[n]]  # grouped by person
    gallery = TemplateMatrix(names, np.array([i for i, _ in rows]), np.stack([emb[p] for _, p in rows]),
                             np.arange(len(rows)))
    per_person = person_distances(np.stack([emb[p] for p in photos]), gallery, templates)
    best = np.argmin(per_person, axis=1)
    return per_person[np.arange(len(photos)), best], [names[i] for i in best]


def _tau_at_fpir(stranger_d: np.ndarray, fpir: float) -> float:
    """The tau, halfway between stranger distances, at which at most ``fpir`` of the strangers get a name."""
    s = np.sort(stranger_d)
    k = int(np.floor(fpir * len(s)))
    if k >= len(s):
        return float(s[-1])
    below = s[s < s[k]]  # at most k values: those are the strangers this tau still names
    return float((below[-1] + s[k]) / 2 if below.size else np.nextafter(s[k], -np.inf))


def openset_report(emb: dict[str, np.ndarray], openset: OpenSet, default_tau: float,
                   targets: Sequence[float] = (0.01, 0.001), templates: str = "mean") -> dict:
    """Rank-1, FNIR at FPIR targets (NIST FRVT 1:N terms) and the whole trade-off curve."""
    mated_d, mated_who = _nearest(emb, openset, [p for p, _ in openset.probes], templates)
    right = np.array([who == truth for who, (_, truth) in zip(mated_who, openset.probes)])
    stranger_d, _ = _nearest(emb, openset, openset.strangers, templates)

    def at(tau: float) -> dict:
        fnir = float(np.mean(~(right & (mated_d <= tau))))
        return {"tau": round(tau, 4), "fpir": float(np.mean(stranger_d <= tau)), "fnir": fnir,
                "rank1": 1.0 - fnir}

    taus = np.unique(np.concatenate([mated_d, stranger_d]))
    curve = [at(float(t)) for t in taus[np.linspace(0, len(taus) - 1, min(len(taus), 400)).astype(int)]]
    return {
        "enrolled": len(openset.enrolled), "probes": len(openset.probes), "strangers": len(openset.strangers),
        "templates_per_person": len(next(iter(openset.enrolled.values()))), "templates": templates,
        "rank1_closed_set": float(np.mean(right)),
        "at_fpir": {f"{t:g}": at(_tau_at_fpir(stranger_d, t)) for t in targets},
        "at_default_tau": at(default_tau),
        "curve": curve,
    }


def plot_openset(rep: dict, out: Path, title: str) -> None:
    """FNIR against FPIR (log axes), the default tau and the FPIR targets marked."""
    plt = _pyplot(out)
    fpir = np.array([c["fpir"] for c in rep["curve"]])
    fnir = np.array([c["fnir"] for c in rep["curve"]])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ok = (fpir > 0) & (fnir > 0)
    ax.plot(fpir[ok], fnir[ok], label=f"--model {rep.get('setting', {}).get('model', '?')}")
    d = rep["at_default_tau"]
    how = f"default tau {d['tau']:.2f}" if d.get("fpir_target") is not None else f"--tau {d['tau']:.2f}"
    ax.plot([max(d["fpir"], 1e-4)], [max(d["fnir"], 1e-4)], "ko", label=how)
    for name, p in rep["at_fpir"].items():
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
