"""`facecli tune` on LFW: a head tuned on half of the people, measured on the other half, with and without it.

Usage: python bench/tune_lfw.py [--mode default|study] [--degrade none|lowq|jpeg10] [--seeds 0 1 2]
                                [--model fusion] [--lfw DIR] [--images DIR] [--pairs FILE]
                                [--features ~/.cache/facecli/lfw-features.npz]

For each split seed, LFW's people are split in two halves (person-disjoint,
one-photo and several-photo people split alike: ``split_people``). A head is
tuned on one half; ``train_head`` splits those people again into training
and validation people and keeps the epoch with the lowest validation FNIR at
FPIR 1 %. ``--mode default`` trains the library's default configuration
(``heldout`` can also compare several and keep the best on the validation
people). Nothing of the held-out half is seen until then. On the
held-out half the base model and the head are measured alike: open-set 1:N
as `facecli eval openset` (first photo enrolled, the rest probes, one-photo
people strangers): rank-1 at FPIR 1 % and 0.1 %, and the FPIR reached at the
default tau (``calibration.tau_for`` for FPIR 1 % and the number enrolled,
from the manifest's impostor quantiles for the base model, the head's own
for the head, and, to separate the two effects, the base model's quantiles
re-measured on the same validation people); then LFW's 10-fold pair
protocol on the pairs whose people are all held out.

``--mode study`` is how the defaults were chosen without the held-out half:
the tuning half of the first seed's split is split three more times into
inner tuning and development people, and each configuration of STUDY is
scored by its mean gain on the development people. (Splits 1 and 2 hold out
people that this study saw; split 0 holds out none of them.)

``--degrade lowq`` is the domain shift: every image is shrunk to 100 x 100
pixels (the face about 40 px wide), made grey and saved as JPEG quality 10,
then embedded as `facecli eval` embeds (``LabelledEmbedder``: the central
face, cached per content); training and held-out people are both degraded.
``--degrade jpeg10`` only re-encodes each image as JPEG quality 10 (full
size, colour). Clean images are read from ``--features`` (bench/lfw_features.py's
dump, the same embeddings) when it holds the model's, else embedded likewise.

Prints Markdown tables and writes bench/results/tune-lfw-<degrade>-<mode>.json.
Run it with `nice -n 10`; the first degraded run embeds all 7,701 images
(about 15 minutes of both cores), later runs read the cache.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from common import add_lfw, md_table, parser, pct, resolve_lfw, write_results

from facecli.calibration import tau_for
from facecli.errors import FaceCliError
from facecli.evaluation import LabelledEmbedder, Pairs, read_lfw_pairs, report
from facecli.evaluation.pairs import distances
from facecli.heads import load_head
from facecli.models import pipeline_spec
from facecli.paths import cache_dir
from facecli.tune import (
    Labelled,
    TuneConfig,
    export_head,
    impostor_quantiles,
    openset_figures,
    split_people,
    train_head,
)

FEATURES = cache_dir() / "lfw-features.npz"  # written by bench/lfw_features.py

#: the configurations ``--mode study`` compares (every key not given is the library's default)
STUDY = [
    {"people_per_batch": 32, "learning_rate": 1e-4},
    {"people_per_batch": 32, "learning_rate": 3e-4},
    {"people_per_batch": 32, "learning_rate": 1e-3},
    {"people_per_batch": 32, "head": "two-layer", "learning_rate": 1e-4},
    {"people_per_batch": 32, "head": "two-layer", "learning_rate": 3e-4},
    {"people_per_batch": 16, "images_per_person": 8, "learning_rate": 3e-4},
    {"people_per_batch": 64, "learning_rate": 1e-4},
    {"people_per_batch": 64, "learning_rate": 3e-4},
    {"people_per_batch": 128, "learning_rate": 1e-4},
    {"people_per_batch": 128, "learning_rate": 3e-4},
    {"people_per_batch": 128, "learning_rate": 1e-3},
    {"people_per_batch": 64, "head": "two-layer", "learning_rate": 1e-4},
    {"people_per_batch": 64, "learning_rate": 3e-4, "mining": "hard"},
    {"people_per_batch": 32, "learning_rate": 3e-4, "loss": "contrastive"},
]


def degrade(kind: str, src: Path, dst: Path) -> None:
    """``lowq``: 100 x 100 px, grey, JPEG quality 10 (a poor camera far from the face); ``jpeg10``: JPEG quality 10."""
    import cv2

    img = cv2.imread(str(src))
    if kind == "lowq":
        small = cv2.resize(img, (100, 100), interpolation=cv2.INTER_AREA)
        img = cv2.cvtColor(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    dst.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dst), img, [cv2.IMWRITE_JPEG_QUALITY, 10])


def embeddings(paths: list[str], model: str, degrade_kind: str, images: Path) -> dict[str, np.ndarray]:
    """One embedding per LFW image (keyed by its original path), of the degraded copy when asked."""
    files = paths
    if degrade_kind != "none":
        work = cache_dir() / "bench-degraded" / degrade_kind
        files = []
        for p in paths:
            dst = work / Path(p).relative_to(images)
            if not dst.exists():
                degrade(degrade_kind, Path(p), dst)
            files.append(str(dst))
    done = [0]
    start = time.time()

    def tick() -> None:
        done[0] += 1
        if done[0] % 500 == 0:
            print(f"  embedded {done[0]}/{len(files)} ({time.time() - start:.0f} s)", flush=True)

    emb, fallbacks = LabelledEmbedder(model, device="cpu").embed(files, tick)
    print(f"  {len(files)} images, {fallbacks} without a detected face (centre crop)", flush=True)
    return {p: emb[f] for p, f in zip(paths, files)}


def measure(emb: np.ndarray, held: np.ndarray, people: np.ndarray, spec, seed: int, paths: list[str],
            pairs: Pairs | None = None) -> dict:
    """On the held-out rows: open-set figures at FPIR 1 % and 0.1 % and the FPIR at the default tau; with
    ``pairs`` (LFW's pairs of held-out people), the 10-fold protocol on them."""
    enrolled = int((np.unique(people[held], return_counts=True)[1] >= 2).sum())
    try:
        tau = tau_for(spec, enrolled, 0.01)
    except FaceCliError as exc:  # beyond what a head's calibration reaches: identify would ask for a tau
        tau, refused = None, str(exc)
    else:
        refused = None
    out = {"openset": openset_figures(emb[held], people[held], seed, (0.01, 0.001), default_tau=tau),
           "default_tau": tau, "refused": refused}
    if pairs is not None:
        rep = report(distances(pairs, dict(zip(paths, emb))), pairs.same, pairs.fold)
        out["pairs"] = {k: v for k, v in asdict(rep).items() if k != "setting"}
    return out


def load(args) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The LFW paths, their embeddings (clean or degraded) and their people."""
    paths = sorted(str(p) for p in args.images.glob("*/*.jpg"))
    z = np.load(args.features) if args.degrade == "none" and args.features.is_file() else None
    # the dump's fused embeddings are the model's only if it was made with the same component networks
    # (the default's FaceNet became the int8 one in issue 19)
    if z is not None and str(z["model"]) == args.model and set(pipeline_spec(args.model).components) <= set(z.files):
        by_path = {str(args.images / p): v for p, v in zip(z["path"], z["fused"])}
        print(f"{len(by_path)} embeddings ({args.model}) from {args.features}", flush=True)
    else:
        print(f"embedding {len(paths)} images ({args.model}, degrade {args.degrade})", flush=True)
        by_path = embeddings(paths, args.model, args.degrade, args.images)
    return paths, np.stack([by_path[p] for p in paths]), np.array([Path(p).parent.name for p in paths])


def study(x: np.ndarray, people: np.ndarray, model: str, seed: int, epochs: int) -> dict:
    """Choosing the defaults without the held-out half: the tuning half of split ``seed`` is split three times
    into inner tuning and development people; each configuration is trained on the inner tuning people and its
    gain over the base model measured on the development people, averaged over the three."""
    tune_people, _ = split_people(people, 0.5, seed=seed)
    sub = people[np.isin(people, tune_people)]
    inner = []
    for s in (10, 11, 12):
        tr, dev = split_people(sub, 0.5, seed=s)
        rows, dev_rows = np.isin(people, tr), np.isin(people, dev)
        inner.append((Labelled(x[rows], people[rows], model), dev_rows, figures(x[dev_rows], people[dev_rows])))
    base = np.mean([b for _, _, b in inner], axis=0)
    print(f"\n### study on the tuning half of split {seed}: gain on the development people (mean of 3)\n")
    print(f"base: rank-1 at FPIR 1 % {pct(base[0])}, at FPIR 0.1 % {pct(base[1])}, closed set {pct(base[2])}\n")
    md_table(["configuration", "kept epochs", "rank-1 at FPIR 1 % (worst of 3)", "at FPIR 0.1 %", "closed set", "time"])
    rows = []
    for cfg in STUDY:
        t0 = time.time()
        gains, kept = [], []
        for data, dev_rows, b in inner:
            res = train_head(data, TuneConfig(epochs=epochs, **cfg))
            gains.append(figures(res.head.forward(x[dev_rows]), people[dev_rows]) - b)
            kept.append(res.best_epoch)
        g = np.mean(gains, axis=0)
        rows.append({"config": cfg, "kept_epochs": kept, "gain": g.tolist(), "worst": float(np.min(gains, 0)[0])})
        print(f"| {cfg} | {kept} | {g[0] * 100:+.2f} ({np.min(gains, 0)[0] * 100:+.2f}) | {g[1] * 100:+.2f} | "
              f"{g[2] * 100:+.2f} | {time.time() - t0:.0f} s |", flush=True)
    return {"seed": seed, "base": base.tolist(), "configs": rows}


def figures(emb: np.ndarray, people: np.ndarray) -> np.ndarray:
    """Rank-1 at FPIR 1 %, at 0.1 %, and closed-set rank-1."""
    op = openset_figures(emb, people)
    return np.array([op["at_fpir"]["0.01"]["rank1"], op["at_fpir"]["0.001"]["rank1"], op["rank1_closed_set"]])


def heldout(args, paths: list[str], x: np.ndarray, people: np.ndarray, configs: list[dict]) -> list[dict]:
    """Per split: train each configuration on the tuning half, keep the best on its validation people, then
    measure the base model and that head alike on the held-out half."""
    pairs = read_lfw_pairs(args.pairs, args.images)
    pair_people = [(Path(a).parent.name, Path(b).parent.name) for a, b in zip(pairs.a, pairs.b)]
    spec = pipeline_spec(args.model)
    splits = []
    for seed in args.seeds:
        tune_people, held_people = split_people(people, 0.5, seed=seed)
        tune = np.isin(people, tune_people)
        held = ~tune
        data = Labelled(x[tune], people[tune], args.model, [str(Path(p).relative_to(args.images))
                                                           for p in np.asarray(paths)[tune]])
        print(f"\nsplit {seed}: tuning on {len(tune_people)} people ({tune.sum()} photos), "
              f"held out {len(held_people)} people ({held.sum()} photos)", flush=True)
        trials = []
        for cfg in configs:
            t0 = time.time()
            res = train_head(data, TuneConfig(seed=seed, epochs=args.epochs, **cfg))
            trials.append(res)
            h = res.history
            print(f"  {cfg or 'default'}: val FNIR@1% {h[0].val_fnir:.4f} -> {h[res.best_epoch].val_fnir:.4f} "
                  f"(epoch {res.best_epoch} of {h[-1].epoch}, loss {h[1].loss:.4f} -> {h[-1].loss:.4f}, "
                  f"active {h[1].active:.3f} -> {h[-1].active:.3f}, {time.time() - t0:.0f} s)", flush=True)
        best = min(range(len(trials)), key=lambda i: (trials[i].history[trials[i].best_epoch].val_fnir, i))
        chosen = trials[best]
        with tempfile.TemporaryDirectory() as tmp:  # the head as the CLI will use it: the ONNX file, sha256-checked
            export_head(chosen.head, chosen.metadata(), Path(tmp) / "head.onnx")
            head = load_head(Path(tmp) / "head.onnx")
            y = head.apply(x)
        held_set = set(held_people)
        keep = np.flatnonzero([a in held_set and b in held_set for a, b in pair_people])
        held_pairs = Pairs([pairs.a[i] for i in keep], [pairs.b[i] for i in keep], pairs.same[keep],
                           pairs.fold[keep])
        base = measure(x, held, people, spec, seed, paths, held_pairs)
        # the base model calibrated like the head, on the same validation people: what re-calibration alone gives
        val_rows = np.isin(people, chosen.val_people)
        recal = dataclasses.replace(spec, impostor=impostor_quantiles(x[val_rows], people[val_rows], "validation"))
        base["recalibrated"] = measure(x, held, people, recal, seed, paths)
        tuned = measure(y, held, people, head.calibration(spec), seed, paths, held_pairs)
        splits.append({
            "seed": seed, "tune_people": len(tune_people), "held_people": len(held_people),
            "trials": [{"config": cfg, "best_epoch": r.best_epoch, "epochs_run": r.history[-1].epoch,
                        "val_fnir_epoch0": r.history[0].val_fnir, "val_fnir_best": r.history[r.best_epoch].val_fnir,
                        "history": [asdict(e) for e in r.history]} for cfg, r in zip(configs, trials)],
            "chosen": configs[best], "kept_epoch": chosen.best_epoch, "chosen_validation": chosen.validation,
            "head_impostor": chosen.impostor, "base": base, "head": tuned})
    return splits


def print_heldout(model: str, degrade: str, splits: list[dict]) -> None:
    print(f"\n### {model}, degrade {degrade}: held-out people, base model vs the tuned head\n")
    print("| split | embedding | kept epoch | rank-1 closed set | rank-1 at FPIR 1 % | rank-1 at FPIR 0.1 % | "
          "FPIR at the default tau (tau) | held-out pairs: accuracy (10-fold) | AUC |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in splits:
        for what, m in (("base model", s["base"]), ("base, tau from the validation people", s["base"]["recalibrated"]),
                        (f"head {s['chosen'] or '(default)'}", s["head"])):
            op, pr = m["openset"], m.get("pairs")
            at_tau = "refused: beyond its reach" if m["default_tau"] is None else \
                f"{pct(op['at_default_tau']['fpir'])} ({m['default_tau']:.3f})"
            if pr is None:
                print(f"| {s['seed']} | {what} | | = | = | = | {at_tau} | = | = |")
                continue
            print(f"| {s['seed']} | {what} | {s['kept_epoch'] if what.startswith('head') else ''} | "
                  f"{pct(op['rank1_closed_set'])} | {pct(op['at_fpir']['0.01']['rank1'])} | "
                  f"{pct(op['at_fpir']['0.001']['rank1'])} | {at_tau} "
                  f"| {pct(pr['accuracy'])} ± {pct(pr['accuracy_std'])} ({pr['pairs']} pairs) "
                  f"| {pr['auc']:.4f} |")


def main() -> None:
    ap = parser(__doc__)
    add_lfw(ap, images=True, pairs=True)
    ap.add_argument("--model", default="fusion")
    ap.add_argument("--degrade", choices=["none", "lowq", "jpeg10"], default="none")
    ap.add_argument("--mode", choices=["default", "study"], default="default")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=TuneConfig.epochs)
    ap.add_argument("--features", type=Path, default=FEATURES,
                    help="bench/lfw_features.py's dump: the clean images' embeddings, used when it holds --model's")
    args = resolve_lfw(ap.parse_args())
    paths, x, people = load(args)
    result: dict = {"model": args.model, "degrade": args.degrade, "mode": args.mode}
    if args.mode == "study":
        result["study"] = study(x, people, args.model, args.seeds[0], args.epochs)
    else:
        result["config"] = asdict(TuneConfig())
        result["splits"] = heldout(args, paths, x, people, [{}])
        print_heldout(args.model, args.degrade, result["splits"])
    write_results(f"tune-lfw-{args.degrade}-{args.mode}.json", result)


if __name__ == "__main__":
    main()
