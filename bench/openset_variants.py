"""Every pipeline variant through `facecli eval lfw` and `facecli eval openset`, and the default tau's promise.

Usage: python bench/openset_variants.py [--lfw DIR] [--images DIR] [--pairs FILE]

Part 1: one row per variant (model, detector, flip): LFW 10-fold accuracy, then on
LFW's open-set protocol (1,559 people enrolled one-shot, 3,420 probes, 2,722
strangers) closed-set rank-1 and rank-1 at FPIR 1 % and 0.1 %.
Part 2: several templates per person (--enroll 2, best-of against mean).
Part 3: the default tau (FPIR target 1 %, K = the number enrolled) on random
sub-galleries of K = 100 and 500 (three draws each) and on all 1,559: the FPIR it
gives must stay within 0.5-1.5 %.
Prints Markdown tables and writes bench/results/openset-variants.json. Every
embedding is cached by `facecli eval`, so a re-run takes a minute.
"""

from __future__ import annotations

from common import add_lfw, md_table, parser, pct, resolve_lfw, write_results
from common import facecli_json as facecli

VARIANTS = {
    "facenet (MTCNN)": ["--model", "facenet"],
    "facenet, flip": ["--model", "facenet", "--flip"],
    "facenet on YuNet boxes": ["--model", "facenet", "--detector", "yunet"],
    "sface, no flip": ["--model", "sface", "--no-flip"],
    "sface (flip)": ["--model", "sface"],
    "fusion, no flip": ["--model", "fusion", "--no-flip"],
    "fusion, both flipped": ["--model", "fusion", "--flip"],
    "**fusion (default: SFace flipped)**": [],
}


def main() -> None:
    ap = parser(__doc__)
    add_lfw(ap, images=True, pairs=True)
    args = resolve_lfw(ap.parse_args())
    args.images, args.pairs = str(args.images), str(args.pairs)
    result: dict = {"variants": {}, "templates": {}, "default_tau": []}

    md_table(["variant", "options", "LFW (10-fold)", "rank-1 closed set", "rank-1 at FPIR 1 %", "rank-1 at FPIR 0.1 %"])
    for name, extra in VARIANTS.items():
        lfw = facecli("eval", "lfw", "--pairs", args.pairs, "--images", args.images, *extra)
        op = facecli("eval", "openset", "--images", args.images, *extra)
        op.pop("curve")
        result["variants"][name] = {"options": extra, "lfw": lfw, "openset": op}
        print(f"| {name} | `{' '.join(extra) or '(none)'}` | {pct(lfw['accuracy'])} | {pct(op['rank1_closed_set'])} | "
              f"{pct(op['at_fpir']['0.01']['rank1'])} | {pct(op['at_fpir']['0.001']['rank1'])} |", flush=True)

    print()
    md_table(["templates (--enroll 2)", "enrolled / probes", "rank-1 closed set", "rank-1 at FPIR 1 %",
              "at FPIR 0.1 %"])
    for mode in ("best", "mean"):
        op = facecli("eval", "openset", "--images", args.images, "--enroll", "2", "--templates", mode)
        op.pop("curve")
        result["templates"][mode] = op
        print(f"| {mode} | {op['enrolled']} / {op['probes']} | {pct(op['rank1_closed_set'])} | "
              f"{pct(op['at_fpir']['0.01']['rank1'])} | {pct(op['at_fpir']['0.001']['rank1'])} |", flush=True)

    print()
    md_table(["K (people enrolled)", "draw", "default tau", "FPIR measured", "rank-1 at that tau"])
    for k, seed in [(100, 0), (100, 1), (100, 2), (500, 0), (500, 1), (500, 2), (None, None)]:
        extra = ["--gallery-size", str(k), "--seed", str(seed)] if k else []
        op = facecli("eval", "openset", "--images", args.images, *extra)
        d = op["at_default_tau"]
        row = {"gallery_size": op["enrolled"], "seed": seed, "tau": d["tau"], "fpir": d["fpir"], "rank1": d["rank1"]}
        result["default_tau"].append(row)
        print(f"| {op['enrolled']} | {'all' if seed is None else seed} | {d['tau']:.3f} | {pct(d['fpir'])} | "
              f"{pct(d['rank1'])} |", flush=True)
    write_results("openset-variants.json", result)


if __name__ == "__main__":
    main()
