"""Face quality on degraded LFW: the model behind `identify --min-quality`, fitted and thresholded on one half of
the people, reported on the other.

Usage: python bench/quality.py [--every 3] [--clean-every 1] [--lfw DIR] [--images DIR]

LFW's open set (`facecli eval openset`: people with several photos enrolled
with their first, searched with the rest; people with one photo are
strangers) is split person-disjointly into halves A and B by the first byte
of the sha256 of each person's name (even: A). Each half is its own gallery
(its enrolled people, at the default threshold for its size: the tau for
FPIR 1 %), searched by its own probes and strangers. Enrolled photos stay
clean; probes and strangers are searched as they are ("clean") and through
five poor cameras, made here, deterministically (seeded per photo), and
cached under the cache folder:

- tiny: scaled so that the face's shorter side is 24-32 px (per photo, from
  its clean detection), PNG;
- grey_jpeg: grey, JPEG quality 10;
- dark_noisy: brightness x 0.25, Gaussian noise of sigma 6 grey levels, PNG;
- blurred: Gaussian blur of sigma 2.5-4 px (the face is ~95 px wide), PNG;
- jpeg5: colour, JPEG quality 5.

Every photo goes through facecli's own pipeline (`identify`'s: detection,
crops, embedding, quality signals); its central face is kept (a photo with
no face gets no name). ``--every N`` searches with every Nth probe and
stranger of the degraded conditions (``--clean-every`` of the clean one),
to keep the run short; embeddings and signals are cached per photo, so a
re-run only refits.

On half A: the logistic quality model (``facecli.quality``) is fitted on
the probes of every condition (label: the nearest enrolled person is the
right one), and ``min_quality`` is chosen as the highest threshold (steps
of 0.005) that withholds at most 0.1 % of half A's clean probes: withheld
faces are never named, so misidentifications and strangers named can only
fall as the threshold rises, and the clean photos say how far it may rise
(a bound on the share withheld, rather than on the rank-1 it costs: that
cost comes from a handful of faces and did not carry over from one half to
the other). On half B: rank-1, misidentifications (an enrolled person named
as someone else), strangers named (FPIR), withheld share and photos
without a face, before and after, per condition; and how well quality ranks
the probes whose nearest enrolled person is right above the others (AUC).

Then ``min_gap`` (``identify --min-gap``): with faces under min_quality
withheld, the largest gap (steps of 0.005, up to 0.2) that calls at most
0.1 % of half A's clean probes ambiguous (the runner-up within the gap of
the nearest person: never named). Half B is reported under no rule, under
min_quality, and under both, in two protocols: enrolled photos clean (as
above), and enrolled through the same camera as the searches (half B's
enrolled photos degraded alike: a door camera that enrolls its own users).

The fusion and sface pipelines are both measured from one run of the fusion
pipeline (sface is the fusion's SFace part: the same detector, crop and
flip). Prints Markdown tables and each model's manifest entry; writes
bench/results/quality.json.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import cv2
import numpy as np
from common import add_lfw, degraded_copies, parser, resolve_lfw, write_results

from facecli import decisions, evaluation, matching
from facecli.decisions import MIN_FACE, identification_threshold
from facecli.evaluation.embeddings import central_face
from facecli.matching import TemplateMatrix
from facecli.models import pipeline_spec, spec
from facecli.paths import cache_dir
from facecli.pipeline import Pipeline
from facecli.quality import FEATURES, QualityModel, feature_row, measure
from facecli.values import Candidate, Detection, Face, QualitySignals, Threshold

MEASURED = "fusion"  # the pipeline run; sface is its part
MODELS = ("fusion", "sface")
CONDITIONS = ("clean", "tiny", "grey_jpeg", "dark_noisy", "blurred", "jpeg5")
SIGNALS = [f.name for f in dataclasses.fields(QualitySignals)]
VERSION = "1"  # of the cached measurements: bump when the pipeline's signals change
MAX_CLEAN_WITHHELD = 0.001  # of half A's clean probes, at the threshold chosen (quality), and again (gap)
MAX_GAP = 0.2  # the largest min_gap tried


def half(person: str) -> str:
    return "A" if hashlib.sha256(person.encode()).digest()[0] % 2 == 0 else "B"


def rng_for(condition: str, path: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(f"{condition}/{path}".encode()).digest()[:8], "big"))


# -- the poor cameras ------------------------------------------------------------------------------
def degradations(clean_size: dict[str, float], root: Path) -> dict:
    """condition -> (path, BGR) -> (pixels, suffix, JPEG quality); ``clean_size``: each photo's clean face."""
    median = float(np.median([s for s in clean_size.values() if s > 0]))

    def tiny(path: str, image: np.ndarray):
        target = rng_for("tiny", str(Path(path).relative_to(root))).uniform(24, 32)
        factor = target / (clean_size.get(path) or median)
        size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA), ".png", None

    def grey_jpeg(_path: str, image: np.ndarray):
        return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR), ".jpg", 10

    def dark_noisy(path: str, image: np.ndarray):
        noise = rng_for("dark_noisy", str(Path(path).relative_to(root))).normal(0.0, 6.0, image.shape)
        return np.clip(image * 0.25 + noise, 0, 255).round().astype(np.uint8), ".png", None

    def blurred(path: str, image: np.ndarray):
        sigma = rng_for("blurred", str(Path(path).relative_to(root))).uniform(2.5, 4.0)
        return cv2.GaussianBlur(image, (0, 0), sigma), ".png", None

    def jpeg5(_path: str, image: np.ndarray):
        return image, ".jpg", 5

    return {"tiny": tiny, "grey_jpeg": grey_jpeg, "dark_noisy": dark_noisy, "blurred": blurred, "jpeg5": jpeg5}


# -- measuring: facecli's pipeline, cached -----------------------------------------------------------
def measured(pipeline: Pipeline, condition: str, copies: dict[str, str]) -> dict[str, dict | None]:
    """Original path -> its copy's central face (box, score, embedding, signals), or None (no face); cached."""
    store = cache_dir() / "quality-bench" / f"{MEASURED}-{condition}-v{VERSION}.npz"
    known: dict[str, dict | None] = {}
    if store.exists():
        with np.load(store) as npz:
            z = {k: npz[k] for k in npz.files}  # each read of an npz member decompresses it anew: once
        for i, p in enumerate(z["path"]):
            known[str(p)] = None if not z["found"][i] else {
                "box": tuple(z["box"][i]), "score": float(z["score"][i]), "embedding": z["embedding"][i],
                "signals": z["signals"][i]}
    todo = [p for p in copies if p not in known]
    if todo:
        start = time.perf_counter()
        by_copy = {c: p for p, c in copies.items()}
        for n, res in enumerate(pipeline.run([copies[p] for p in todo]), 1):
            p = by_copy[res.path]
            if res.error is not None or not res.faces:
                known[p] = None
            else:
                w, h = res.size
                det = central_face([f.detection for f in res.faces], (h, w))
                face = next(f for f in res.faces if f.detection is det)
                s = face.signals
                known[p] = {"box": det.box, "score": det.score, "embedding": face.embedding,
                            "signals": np.array([np.nan if getattr(s, k) is None else getattr(s, k) for k in SIGNALS])}
            if n % 500 == 0 or n == len(todo):
                print(f"  {condition}: {n}/{len(todo)} photos, {time.perf_counter() - start:.0f} s", flush=True)
                _save(store, known)
    return {p: known[p] for p in copies}


def _save(store: Path, known: dict[str, dict | None]) -> None:
    paths = sorted(known)
    dim = next(len(v["embedding"]) for v in known.values() if v is not None)
    empty = {"box": (0.0,) * 4, "score": 0.0, "embedding": np.zeros(dim), "signals": np.zeros(len(SIGNALS))}
    rows = [known[p] or empty for p in paths]
    store.parent.mkdir(parents=True, exist_ok=True)
    tmp = store.with_suffix(".tmp.npz")
    np.savez(tmp, path=np.array(paths), found=np.array([known[p] is not None for p in paths]),
             box=np.array([r["box"] for r in rows], dtype=np.float32), score=np.array([r["score"] for r in rows]),
             embedding=np.stack([r["embedding"] for r in rows]).astype(np.float32),
             signals=np.stack([r["signals"] for r in rows]).astype(np.float64))
    tmp.replace(store)


def signals_of(row: dict) -> QualitySignals:
    values = {k: (None if np.isnan(v) else float(v)) for k, v in zip(SIGNALS, row["signals"])}
    return QualitySignals(**values)


def model_vector(fused: np.ndarray, model: str) -> np.ndarray:
    """The embedding ``model`` gives, out of the fusion's: the fusion itself, or one of its parts' unit vector."""
    if model == MEASURED:
        return fused
    fusion = pipeline_spec(MEASURED)
    dims = [int(spec(c).output["dim"]) for c in fusion.components]
    i = fusion.components.index(model)
    part = fused[..., sum(dims[:i]):sum(dims[:i + 1])]
    return part / np.linalg.norm(part, axis=-1, keepdims=True)


# -- one half's searches ------------------------------------------------------------------------------
@dataclasses.dataclass
class Searches:
    """One half, one condition, one model: each search's nearest person, distance, truth and face."""

    truth: list[str | None]  # None: a stranger
    faces: list[Face | None]  # None: no face found
    nearest: list[str | None] = dataclasses.field(default_factory=list)
    distance: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0))
    runner_up: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0))  # the second-nearest person's


def searches(model: str, gallery: TemplateMatrix, items: list[tuple[str, str | None]],
             rows: dict[str, dict | None]) -> Searches:
    faces = []
    for path, _ in items:
        r = rows[path]
        faces.append(None if r is None else Face(0, Detection(tuple(r["box"]), r["score"]), (),
                                                  model_vector(r["embedding"], model), signals=signals_of(r)))
    found = [f for f in faces if f is not None]
    per_person = matching.person_distances(np.stack([f.embedding for f in found]), gallery)
    best = np.argmin(per_person, axis=1)
    second = np.partition(per_person, 1, axis=1)[:, 1]
    it = iter(zip(best, per_person[np.arange(len(found)), best], second))
    s = Searches([t for _, t in items], faces)
    dist, runner_up = [], []
    for f in faces:
        if f is None:
            s.nearest.append(None)
            dist.append(np.inf)
            runner_up.append(np.inf)
        else:
            b, d, r = next(it)
            s.nearest.append(gallery.names[b])
            dist.append(d)
            runner_up.append(r)
    s.distance, s.runner_up = np.array(dist), np.array(runner_up)
    return s


def half_searches(model: str, full, h: str, enrolled_rows: dict, items: dict, rows: dict,
                  conditions: tuple[str, ...]) -> tuple[Threshold, dict[str, Searches]]:
    """Half ``h``'s gallery (one template a person, from ``enrolled_rows``) searched in each of ``conditions``, and
    its threshold without the gap rule (each rule is switched on by hand: ``states``)."""
    people = [n for n in full.enrolled if half(n) == h and enrolled_rows.get(full.enrolled[n][0]) is not None]
    vectors = np.stack([model_vector(enrolled_rows[full.enrolled[n][0]]["embedding"], model) for n in people])
    gallery = TemplateMatrix(people, np.arange(len(people)), vectors, np.arange(len(people)))
    kept = set(people)
    return identification_threshold(model, len(people), gap=0.0), {
        c: searches(model, gallery, [(p, t) for p, t in items[c] if half(Path(p).parent.name) == h
                                     and (t is None or t in kept)], rows[c]) for c in conditions}


def outcome(s: Searches, threshold: Threshold, min_quality: float) -> dict:
    """Rank-1, misidentifications, strangers named, withheld (too poor) and ambiguous: by facecli's own rules
    (``matching.decide_nearest``: tau and the threshold's min_gap; too small; too poor)."""
    named, withheld, ambiguous = [], [], []
    for f, who, d, r in zip(s.faces, s.nearest, s.distance, s.runner_up):
        if f is None:
            named.append(None)
            withheld.append(False)
            ambiguous.append(False)
            continue
        decision = matching.decide_nearest([Candidate(who, float(d))], float(r), threshold)
        (decision,) = decisions.too_small([f], [decision], MIN_FACE)
        (decision,) = decisions.too_poor([f], [decision], min_quality)
        withheld.append(decision.too_poor)
        ambiguous.append(decision.label == "ambiguous")
        named.append(decision.name)
    mated = [(n, t) for n, t in zip(named, s.truth) if t is not None]
    strangers = [n for n, t in zip(named, s.truth) if t is None]

    def of_probes(flags: list[bool]) -> float:
        return float(np.mean([w for w, t in zip(flags, s.truth) if t is not None]))

    return {"rank1": float(np.mean([n == t for n, t in mated])),
            "misidentified": float(np.mean([n is not None and n != t for n, t in mated])),
            "fpir": float(np.mean([n is not None for n in strangers])),
            "withheld": float(np.mean(withheld)), "probes_withheld": of_probes(withheld),
            "ambiguous": float(np.mean(ambiguous)), "probes_ambiguous": of_probes(ambiguous),
            "no_face": float(np.mean([f is None for f in s.faces])), "probes": len(mated), "strangers": len(strangers)}


# -- the quality model: fitted and thresholded on half A ---------------------------------------------
def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 50) -> tuple[np.ndarray, float]:
    """Weights and intercept of a logistic regression on standardised ``x`` (Newton's method, a little L2)."""
    a = np.c_[np.ones(len(x)), x]
    w = np.zeros(a.shape[1])
    ridge = l2 * len(x) * np.diag([1e-6] + [1.0] * x.shape[1])  # the intercept barely: a separable tiny run
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(a @ w)))
        grad = a.T @ (p - y) + ridge @ w
        hess = (a * (p * (1 - p))[:, None]).T @ a + ridge
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[1:], float(w[0])


def fit(model: str, training: list[Searches], names: list[str]) -> QualityModel:
    rows, labels = [], []
    for s in training:
        for f, who, truth in zip(s.faces, s.nearest, s.truth):
            if f is not None and truth is not None and not decisions.is_too_small(f.detection, MIN_FACE):
                rows.append(feature_row(f.signals, names))
                labels.append(who == truth)
    x = np.array(rows)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0  # a feature constant on the training faces (a tiny run): it weighs nothing
    coef, intercept = fit_logistic((x - mean) / scale, np.array(labels, dtype=float))
    return QualityModel(tuple(names), tuple(np.round(mean, 6)), tuple(np.round(scale, 6)), tuple(np.round(coef, 6)),
                        round(intercept, 6), 0.0)


def scored(qm: QualityModel, s: Searches) -> Searches:
    for f in s.faces:
        if f is not None:
            f.quality = qm.score(f.signals)
    return s


def choose(by_condition: dict[str, Searches], threshold) -> tuple[float, list[dict]]:
    """The threshold (see the module's docstring) and, for each one tried, its figures on half A."""
    base = {c: outcome(s, threshold, 0.0) for c, s in by_condition.items()}
    tried = []
    for q in np.round(np.arange(0.0, 0.9951, 0.005), 3):
        now = {c: outcome(s, threshold, float(q)) for c, s in by_condition.items()}
        tried.append({"min_quality": float(q), "clean_rank1_cost": base["clean"]["rank1"] - now["clean"]["rank1"],
                      **{f"{c}_{k}": now[c][k] for c in now for k in ("rank1", "misidentified", "fpir", "withheld",
                                                                      "probes_withheld")}})
    return max(t["min_quality"] for t in tried if t["clean_probes_withheld"] <= MAX_CLEAN_WITHHELD + 1e-12), tried


def choose_gap(by_condition: dict[str, Searches], threshold: Threshold, min_quality: float) -> tuple[float, list[dict]]:
    """The min_gap (see the module's docstring), with faces under ``min_quality`` withheld first, and for each
    gap tried its figures on half A."""
    tried = []
    for g in np.round(np.arange(0.0, MAX_GAP + 1e-9, 0.005), 3):
        now = {c: outcome(s, dataclasses.replace(threshold, min_gap=float(g)), min_quality)
               for c, s in by_condition.items()}
        tried.append({"min_gap": float(g), **{f"{c}_{k}": now[c][k] for c in now for k in (
            "rank1", "misidentified", "fpir", "ambiguous", "probes_ambiguous")}})
    return max(t["min_gap"] for t in tried if t["clean_probes_ambiguous"] <= MAX_CLEAN_WITHHELD + 1e-12), tried


# -- the report ------------------------------------------------------------------------------------------
def pts(x: float) -> str:
    return f"{x * 100:.2f}"


def auc(s: Searches) -> float:
    """How well quality ranks the probes whose nearest enrolled person is right above those whose is wrong: the
    chance that a right one scores higher than a wrong one (0.5: no better than chance)."""
    pairs = [(f.quality, who == truth) for f, who, truth in zip(s.faces, s.nearest, s.truth)
             if f is not None and truth is not None]
    q = np.array([p[0] for p in pairs])
    right = np.array([p[1] for p in pairs])
    if right.all() or not right.any():
        return float("nan")
    ranks = np.argsort(np.argsort(q)) + 1.0
    return float((ranks[right].sum() - right.sum() * (right.sum() + 1) / 2) / (right.sum() * (~right).sum()))


def states(s: Searches, threshold: Threshold, min_quality: float, gap: float) -> list[dict]:
    """The figures under no rule, under ``min_quality``, and under both it and ``gap``."""
    return [outcome(s, threshold, 0.0) | {"auc": auc(s)}, outcome(s, threshold, min_quality),
            outcome(s, dataclasses.replace(threshold, min_gap=gap), min_quality)]


def report(model: str, protocol: str, by_state: list[dict]) -> None:
    """One table: per condition, each figure under no rule -> min_quality -> min_quality and min_gap."""
    print(f"\n#### {model}: half B, {protocol}; no rule -> min_quality -> min_quality + min_gap\n")
    print("| condition | probes | strangers | no face % | quality AUC | rank-1 % | misidentified % (n) | "
          "strangers named (FPIR) % (n) | too poor % | ambiguous % |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def each(c: str, key: str, n: str | None = None) -> str:
        return " -> ".join(f"{pts(x[c][key])}" + (f" ({round(x[c][key] * x[c][n])})" if n else "") for x in by_state)

    for c in by_state[0]:
        b, a = by_state[0][c], by_state[-1][c]
        print(f"| {c} | {b['probes']} | {b['strangers']} | {pts(b['no_face'])} | {b['auc']:.3f} | "
              f"{each(c, 'rank1')} | {each(c, 'misidentified', 'probes')} | {each(c, 'fpir', 'strangers')} | "
              f"{pts(a['withheld'])} | {pts(a['ambiguous'])} |")


def manifest_entry(qm: QualityModel, every: int, clean_every: int) -> dict:
    return {"what": "face quality: sigmoid(intercept + coef . (features - mean) / scale) of the signals of "
                    "facecli/quality.py, the fitted chance that the face's nearest enrolled person is its own; "
                    "min_quality: faces under it are never named",
            "measured_on": f"LFW deep-funneled open set, the probes of the people of half A (sha256 of the name, "
                           f"first byte even), clean (1 in {clean_every}), through five poor cameras (1 in {every}); "
                           f"min_quality: the highest that withholds at most 0.1 % of their clean probes "
                           f"(bench/quality.py)",
            "features": list(qm.features), "mean": list(qm.mean), "scale": list(qm.scale), "coef": list(qm.coef),
            "intercept": qm.intercept, "min_quality": qm.min_quality}


def gap_entry(gap: float, every: int, clean_every: int) -> dict:
    return {"what": "1:N: a face within tau whose second-nearest person is less than min_gap farther (squared L2) "
                    "than its nearest is ambiguous, never named",
            "measured_on": f"LFW deep-funneled open set, the probes of the people of half A (as quality's), clean "
                           f"(1 in {clean_every}); min_gap: the largest (steps of 0.005) that calls at most 0.1 % of "
                           f"them ambiguous, faces under min_quality withheld first; reported on half B, clean and "
                           f"through five poor cameras (1 in {every}) (bench/quality.py)",
            "min_gap": gap}


def cost_of_measuring(rows: dict[str, dict | None], root: Path) -> float:
    """Microseconds ``quality.measure`` takes per face (its OpenCV work on the 112 x 112 crop), median of 5."""
    crop = cv2.resize(cv2.imread(next(iter(rows))), (112, 112))
    det = Detection((0.0, 0.0, 100.0, 100.0), 0.9)
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(200):
            measure(det, crop, 10.0, 0.9)
        runs.append((time.perf_counter() - start) / 200 * 1e6)
    return float(np.median(runs))


def main() -> None:
    ap = parser(__doc__)
    add_lfw(ap, images=True)
    ap.add_argument("--every", type=int, default=3, help="every Nth probe and stranger of the degraded conditions")
    ap.add_argument("--clean-every", type=int, default=1, help="every Nth probe and stranger of the clean photos")
    args = resolve_lfw(ap.parse_args())
    started = time.perf_counter()
    full = evaluation.read_openset(args.images)
    enrolled = sorted(p for ps in full.enrolled.values() for p in ps)
    items = {"clean": ([(p, t) for p, t in full.probes[::args.clean_every]]
                       + [(p, None) for p in full.strangers[::args.clean_every]])}
    degraded = [(p, t) for p, t in full.probes[::args.every]] + [(p, None) for p in full.strangers[::args.every]]
    pipeline = Pipeline(model=MEASURED, device="cpu")
    print(f"{len(full.enrolled)} enrolled people; clean: {len(items['clean'])} searches, each degraded condition "
          f"{len(degraded)}", flush=True)
    rows = {"enrolled": measured(pipeline, "clean", {p: p for p in enrolled})}
    rows["clean"] = measured(pipeline, "clean", {p: p for p, _ in items["clean"]})
    clean_size = {p: r["signals"][0] for p, r in (measured(pipeline, "clean", {p: p for p, _ in degraded})
                                                  | rows["enrolled"]).items() if r is not None}
    cameras = degradations(clean_size, args.images)
    for condition, make in cameras.items():
        copies = degraded_copies([p for p, _ in degraded], args.images,
                                 cache_dir() / "quality-bench" / "photos" / condition, make)
        rows[condition] = measured(pipeline, condition, copies)
        items[condition] = degraded
    for condition in CONDITIONS[1:]:  # the same cameras at enrolment: half B's enrolled photos through each
        copies = degraded_copies([full.enrolled[n][0] for n in full.enrolled if half(n) == "B"], args.images,
                                 cache_dir() / "quality-bench" / "photos" / condition, cameras[condition])
        rows[f"enrolled {condition}"] = measured(pipeline, condition, copies)
    names = list(FEATURES)
    result: dict = {"every": args.every, "clean_every": args.clean_every, "features": names, "models": {}}
    for model in MODELS:
        thresholds, by_half = {}, {}
        for h in ("A", "B"):
            thresholds[h], by_half[h] = half_searches(model, full, h, rows["enrolled"], items, rows, CONDITIONS)
        same_camera = {c: half_searches(model, full, "B", rows[f"enrolled {c}"], items, rows, (c,))
                       for c in CONDITIONS[1:]}
        qm = fit(model, list(by_half["A"].values()), names)
        for s in [*by_half["A"].values(), *by_half["B"].values(), *(x[1][c] for c, x in same_camera.items())]:
            scored(qm, s)
        q, tried = choose(by_half["A"], thresholds["A"])
        qm = dataclasses.replace(qm, min_quality=q)
        gap, tried_gaps = choose_gap(by_half["A"], thresholds["A"], q)
        clean_enrolled = {c: states(s, thresholds["B"], q, gap) for c, s in by_half["B"].items()}
        same = {c: states(t[c], threshold, q, gap) for c, (threshold, t) in same_camera.items()}
        print(f"\n### {model}: tau {thresholds['B'].tau} for {thresholds['B'].gallery_size} people (half B); "
              f"min_quality {q}, min_gap {gap} chosen on half A")
        for protocol, table in (("enrolled photos clean", clean_enrolled),
                                ("enrolled through the same camera", same)):
            report(model, protocol, [{c: v[i] for c, v in table.items()} for i in range(3)])
        matches = {}
        for key, entry in (("quality", manifest_entry(qm, args.every, args.clean_every)),
                           ("ambiguity", gap_entry(gap, args.every, args.clean_every))):
            shipped = getattr(pipeline_spec(model), key)
            matches[key] = bool(shipped) and {k: shipped.get(k) for k in entry if k not in ("what", "measured_on")} \
                == {k: v for k, v in entry.items() if k not in ("what", "measured_on")}
            print(f"\nmanifest entry ({'the same as the shipped one' if matches[key] else 'NOT the shipped one'}):\n"
                  f'"{key}": {json.dumps(entry)}')
        result["models"][model] = {
            "tau_half_b": thresholds["B"].tau, "gallery_size_half_b": thresholds["B"].gallery_size,
            "quality": manifest_entry(qm, args.every, args.clean_every),
            "ambiguity": gap_entry(gap, args.every, args.clean_every),
            "states": ["no rule", "min_quality", "min_quality + min_gap"],
            "half_b": clean_enrolled, "half_b_same_camera": same,
            "half_a_thresholds": tried, "half_a_gaps": tried_gaps, "manifest_matches": matches}
    result["measure_us_per_face"] = cost_of_measuring(rows["enrolled"], args.images)
    result["seconds"] = time.perf_counter() - started
    print(f"\nquality.measure: {result['measure_us_per_face']:.0f} us per face; the run took {result['seconds']:.0f} s")
    write_results("quality.json", result)


if __name__ == "__main__":
    main()
