"""A head's calibration checked on held-out people: identify one-shot galleries of K other people at the default tau.

Usage: python bench/head_reach.py [--seeds 0 1 2] [--sizes 30 100 300 700] [--draws 5] [--small 45]
                                  [--subsets 50 100 250]
                                  [--model fusion] [--degrade none|lowq] [--lfw DIR] [--features FILE]

For each split seed, LFW's people are split in two halves as bench/tune_lfw.py
splits them; a head is tuned on one half with the library's defaults
(``train_head``: its own validation people give its impostor quantiles, their
tail model and its reach), written and read back as the CLI reads it. On the
held-out half, ``--draws`` times per gallery size K: K people with two photos
or more are enrolled one-shot (their first photo), their other photos are the
genuine searches, and every other held-out person (in neither the tuning half
nor the gallery) is a stranger, searched with their first photo. Each search is
decided at the default tau identify uses for K people at FPIR 1 %
(``decisions.identification_threshold`` with the head), or refused beyond the
head's reach. Reported: the FPIR (strangers named), rank-1 (genuine searches
named rightly) and the tau; the same for the base model with the manifest's
tau. ``--small N`` also tunes a head on only N of the tuning half's people
(the case of a user with a few dozen people): its reach, and what its
quantiles alone (a head written before the tail model) gave at their own
reach. ``--subsets`` refits the tail on that many of the head's validation
people: the reach each gives, and the FPIR on held-out people at that reach.

Clean photos are read from ``--features`` (bench/lfw_features.py's dump);
``--degrade lowq`` embeds 100 x 100 px grey JPEG-10 copies as bench/tune_lfw.py
does (cached). Prints Markdown tables and writes
bench/results/head-reach-<degrade>.json.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
from common import add_lfw, md_table, parser, pct, resolve_lfw, write_results
from tune_lfw import FEATURES, load

from facecli.calibration import largest_gallery, tau_for
from facecli.decisions import identification_threshold
from facecli.errors import FaceCliError
from facecli.heads import load_head
from facecli.models import pipeline_spec
from facecli.tune import Labelled, TuneConfig, export_head, split_people, train_head
from facecli.tune.tail import tail_model


def identify_check(vectors: np.ndarray, people: np.ndarray, held: list[str], size: int, rng: np.random.Generator,
                   tau: float) -> dict:
    """One gallery of ``size`` held-out people with two photos or more (first photo enrolled): the FPIR of the
    other held-out people's first photos and the rank-1 of the enrolled people's other photos at ``tau``."""
    names, counts = np.unique(people[np.isin(people, held)], return_counts=True)
    enrolled = set(rng.choice(names[counts >= 2], size, replace=False).tolist())
    first = {p: i for i, p in reversed(list(enumerate(people)))}
    gallery_names = sorted(enrolled)
    gallery = vectors[[first[p] for p in gallery_names]]
    genuine = [i for i, p in enumerate(people) if p in enrolled and i != first[p]]
    strangers = [first[p] for p in names if p not in enrolled]

    def nearest(rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
        d = np.clip(2.0 - 2.0 * vectors[rows] @ gallery.T, 0.0, 4.0)
        return d.argmin(axis=1), d.min(axis=1)

    _, stranger_d = nearest(strangers)
    who, genuine_d = nearest(genuine)
    right = np.array([gallery_names[w] == people[i] for w, i in zip(who, genuine)])
    return {"fpir": float(np.mean(stranger_d <= tau)), "rank1": float(np.mean(right & (genuine_d <= tau))),
            "strangers": len(strangers), "searches": len(genuine)}


def measure(vectors: np.ndarray, people: np.ndarray, held: list[str], sizes: list[int], draws: int, seed: int,
            model: str, head=None) -> list[dict]:
    """Per gallery size: the default tau (or why it is refused) and the check over ``draws`` galleries."""
    rows = []
    for size in sizes:
        try:
            tau = identification_threshold(model, size, head=head).tau
        except FaceCliError as exc:
            rows.append({"size": size, "refused": str(exc)})
            continue
        rng = np.random.default_rng([seed, size])
        checks = [identify_check(vectors, people, held, size, rng, tau) for _ in range(draws)]
        rows.append({"size": size, "tau": tau, "fpir": [c["fpir"] for c in checks],
                     "rank1": [c["rank1"] for c in checks], "strangers": checks[0]["strangers"],
                     "searches": [c["searches"] for c in checks]})
    return rows


def at_reach(vectors: np.ndarray, people: np.ndarray, held: list[str], spec, draws: int, seed: int) -> dict:
    """The largest gallery ``spec``'s calibration reaches at FPIR 1 %, and the check there (capped at the held-out
    people with two photos or more)."""
    reach = largest_gallery(spec)
    names, counts = np.unique(people[np.isin(people, held)], return_counts=True)
    size = min(reach, int((counts >= 2).sum()))
    if size < 1:
        return {"reach": reach}
    tau = tau_for(spec, size)
    rng = np.random.default_rng([seed, size, 1])
    checks = [identify_check(vectors, people, held, size, rng, tau) for _ in range(draws)]
    return {"reach": reach, "size": size, "tau": tau, "fpir": [c["fpir"] for c in checks],
            "rank1": [c["rank1"] for c in checks]}


def tuned(data: Labelled, config: TuneConfig, folder: Path, name: str):
    """A head trained on ``data``, written and read back as the CLI reads it."""
    result = train_head(data, config)
    export_head(result.head, result.metadata(), folder / name)
    return result, load_head(folder / name)


def main() -> None:
    ap = parser(__doc__)
    add_lfw(ap, images=True)
    ap.add_argument("--model", default="fusion")
    ap.add_argument("--degrade", choices=["none", "lowq"], default="none")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--sizes", type=int, nargs="+", default=[30, 100, 300, 700])
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--small", type=int, default=45, help="also tune a head on this many people (0: not)")
    ap.add_argument("--subsets", type=int, nargs="*", default=[50, 100, 250],
                    help="refit the tail on this many of the head's validation people")
    ap.add_argument("--features", type=Path, default=FEATURES)
    args = resolve_lfw(ap.parse_args())
    paths, x, people = load(args)
    spec = pipeline_spec(args.model)
    out: dict = {"model": args.model, "degrade": args.degrade, "config": TuneConfig().__dict__, "splits": []}
    for seed in args.seeds:
        tune_people, held = split_people(people, 0.5, seed=seed)
        tune = np.isin(people, tune_people)
        t0 = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            result, head = tuned(Labelled(x[tune], people[tune], args.model), TuneConfig(seed=seed), Path(tmp),
                                 "head.onnx")
            small = None
            if args.small:
                names, counts = np.unique(people[tune], return_counts=True)
                few = np.random.default_rng([seed, 45]).choice(names[counts >= 2], args.small, replace=False)
                rows = np.isin(people, few)
                small_result, small_head = tuned(Labelled(x[rows], people[rows], args.model), TuneConfig(seed=seed),
                                                 Path(tmp), "small.onnx")
                y = small_head.apply(x)
                table_only = small_head.calibration(spec)
                table_only = dataclasses.replace(table_only, impostor={k: v for k, v in table_only.impostor.items()
                                                                       if k != "tail"})
                small = {"people": args.small, "photos": int(rows.sum()), "val_people": len(small_result.val_people),
                         "tail": small_result.impostor["tail"],
                         "calibrated_up_to": largest_gallery(small_head.calibration(spec)),
                         "check": measure(y, people, held, args.sizes, args.draws, seed, args.model, small_head),
                         "quantiles_alone": at_reach(y, people, held, table_only, args.draws, seed)}
            y = head.apply(x)
            subsets = []
            val = np.array(result.val_people)
            for n in args.subsets:
                if n >= len(val):
                    continue
                rows = np.isin(people, np.random.default_rng([seed, n]).choice(val, n, replace=False))
                sub = head.calibration(spec)
                refit = tail_model(y[rows], people[rows], seed)
                sub = dataclasses.replace(sub, impostor={**sub.impostor, "tail": refit})
                subsets.append({"val_people": n, "tail": sub.impostor["tail"],
                                **at_reach(y, people, held, sub, args.draws, seed)})
        tail = result.impostor["tail"]
        split = {"seed": seed, "tune_people": len(tune_people), "held_people": len(held),
                 "val_people": len(result.val_people), "kept_epoch": result.best_epoch, "tail": tail,
                 "calibrated_up_to": largest_gallery(head.calibration(spec)),
                 "head": measure(y, people, held, args.sizes, args.draws, seed, args.model, head),
                 "base": measure(x, people, held, args.sizes, args.draws, seed, args.model), "small": small,
                 "subsets": subsets + [{"val_people": len(result.val_people), "tail": tail,
                                        **at_reach(y, people, held, head.calibration(spec), args.draws, seed)}],
                 "seconds": round(time.time() - t0, 1)}
        out["splits"].append(split)
        print(f"split {seed}: head tuned on {len(tune_people)} people ({len(result.val_people)} validation people, "
              f"epoch {result.best_epoch}); tail xi {tail['xi']}, reach {tail['reach_p']:.3g} -> "
              f"{split['calibrated_up_to']} people at FPIR 1 %; {split['seconds']} s", flush=True)
    report(out)
    write_results(f"head-reach-{args.degrade}.json", out)


def report(out: dict) -> None:
    print(f"\n### {out['model']}, degrade {out['degrade']}: one-shot galleries of held-out people, default tau "
          "(FPIR 1 %)\n")
    md_table(["split", "what (calibrated up to)", "K", "tau", "strangers named (FPIR), mean [min, max]",
              "rank-1, mean"])
    for s in out["splits"]:
        whats = [(f"head ({s['calibrated_up_to']})", s["head"]), ("base model (manifest)", s["base"])]
        if s["small"]:
            whats.append((f"head on {s['small']['people']} people ({s['small']['calibrated_up_to']})",
                          s["small"]["check"]))
        for what, rows in whats:
            for r in rows:
                if "refused" in r:
                    print(f"| {s['seed']} | {what} | {r['size']} | refused | | |")
                    continue
                f = np.array(r["fpir"])
                print(f"| {s['seed']} | {what} | {r['size']} | {r['tau']:.3f} | {pct(f.mean())} "
                      f"[{pct(f.min())}, {pct(f.max())}] of {r['strangers']} | {pct(np.mean(r['rank1']))} |")
    print("\n### the reach and the FPIR at it, by validation people (a gallery of the reach's size, capped at the "
          "held-out people)\n")
    md_table(["split", "tail fitted on", "reach at FPIR 1 %", "K checked", "tau", "strangers named, mean [min, max]",
              "rank-1, mean"])
    for s in out["splits"]:
        checks = [(f"{r['val_people']} validation people", r) for r in s["subsets"]]
        if s["small"]:
            q = s["small"]["quantiles_alone"]
            few = f"head on {s['small']['people']} people"
            checks.append((f"{few}: its tail", {"reach": s["small"]["calibrated_up_to"]}))
            checks.append((f"{few}: its quantiles alone (before issue 27)", q))
        for what, r in checks:
            if "fpir" not in r:
                print(f"| {s['seed']} | {what} | {r['reach']} | | | | |")
                continue
            f = np.array(r["fpir"])
            print(f"| {s['seed']} | {what} | {r['reach']} | {r['size']} | {r['tau']:.3f} | {pct(f.mean())} "
                  f"[{pct(f.min())}, {pct(f.max())}] | {pct(np.mean(r['rank1']))} |")


if __name__ == "__main__":
    main()
