"""Open-set identification (1:N with strangers) on a labelled folder, in NIST FRVT terms.

People with more than ``enroll`` photos are enrolled with their first ones
and searched with the rest (mated searches); everyone else is a stranger,
searched with one photo. FPIR = strangers given a name; FNIR = mated
searches not given their own name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facecli.decisions import is_ambiguous
from facecli.errors import BadValue, InputError
from facecli.evaluation.embeddings import LabelledEmbedder
from facecli.inputs import is_image_name
from facecli.matching import TemplateMatrix, check_templates, person_distances
from facecli.values import Threshold


@dataclass(frozen=True)
class OpenSet:
    """A labelled folder split for 1:N: enrolled photos, probes of enrolled people, strangers."""

    enrolled: dict[str, list[str]]  # person -> enrolled photos
    probes: list[tuple[str, str]]  # (photo, person): mated searches
    strangers: list[str]  # one photo per person who is not enrolled


def read_openset(images: Path, enroll: int = 1) -> OpenSet:
    """``images/<person>/<photos>``: people with more than ``enroll`` photos are enrolled with their first
    ``enroll`` (sorted by name) and probed with the rest; the others are strangers (their first photo)."""
    root = Path(images)
    if not root.is_dir():
        raise InputError(str(root), "not a directory (expected <person>/<photos>)")
    enrolled: dict[str, list[str]] = {}
    probes: list[tuple[str, str]] = []
    strangers: list[str] = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(str(f) for f in person.iterdir() if f.is_file() and is_image_name(f))
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
        raise BadValue("gallery_size", size, f"must be between 1 and {len(names)} (the people enrollable)")
    keep = {names[i] for i in np.random.default_rng(seed).choice(len(names), size, replace=False)}
    return OpenSet({n: ps for n, ps in openset.enrolled.items() if n in keep},
                   [(p, n) for p, n in openset.probes if n in keep], openset.strangers)


def _nearest(emb: dict[str, np.ndarray], openset: OpenSet, photos: Sequence[str], templates: str = "mean",
             min_gap: float = 0.0) -> tuple[np.ndarray, list[str]]:
    """Each photo's distance to its nearest enrolled person (as identify measures it) and that person; infinite
    (never named, at any tau) where the runner-up is within ``min_gap`` of it (ambiguous, as identify decides)."""
    names = list(openset.enrolled)
    rows = [(i, p) for i, n in enumerate(names) for p in openset.enrolled[n]]  # grouped by person
    gallery = TemplateMatrix(names, np.array([i for i, _ in rows]), np.stack([emb[p] for _, p in rows]),
                             np.arange(len(rows)))
    per_person = person_distances(np.stack([emb[p] for p in photos]), gallery, templates)
    best = np.argmin(per_person, axis=1)
    nearest = per_person[np.arange(len(photos)), best]
    if per_person.shape[1] > 1:
        runner_up = np.partition(per_person, 1, axis=1)[:, 1]
        nearest = np.where(is_ambiguous(nearest, runner_up, min_gap), np.inf, nearest)
    return nearest, [names[i] for i in best]


def tau_at_fpir(stranger_d: np.ndarray, fpir: float) -> float:
    """The tau, halfway between stranger distances, at which at most ``fpir`` of the strangers get a name."""
    s = np.sort(stranger_d)
    k = int(np.floor(fpir * len(s)))
    if k >= len(s) or np.isinf(s[k]):  # every stranger that is ever named (the rest are ambiguous) may be
        finite = s[np.isfinite(s)]
        return float(finite[-1]) if finite.size else 4.0
    below = s[s < s[k]]  # at most k values: those are the strangers this tau still names
    return float((below[-1] + s[k]) / 2 if below.size else np.nextafter(s[k], -np.inf))


@dataclass(frozen=True)
class OpensetReport:
    """Open-set 1:N figures (NIST FRVT terms): rank-1, FNIR at FPIR targets, the trade-off curve."""

    enrolled: int
    probes: int
    strangers: int
    templates_per_person: int
    templates: str
    rank1_closed_set: float
    at_fpir: dict[str, dict[str, float]]  # "0.01" -> tau, fpir, fnir, rank1
    at_default_tau: dict[str, float | None]  # the same at the threshold identify would use, + fpir_target
    curve: list[dict[str, float]]
    fallbacks: int
    setting: dict
    seed: int | None  # of the random sub-gallery, if one was drawn

    def as_dict(self) -> dict:
        return asdict(self)


def openset_report(emb: dict[str, np.ndarray], openset: OpenSet, threshold: Threshold,
                   targets: Sequence[float] = (0.01, 0.001), templates: str = "mean", fallbacks: int = 0,
                   setting: dict | None = None, seed: int | None = None) -> OpensetReport:
    """Rank-1, FNIR at FPIR targets and the whole trade-off curve, from each image's embedding; faces ambiguous
    under the threshold's ``min_gap`` are named at no tau."""
    mated_d, mated_who = _nearest(emb, openset, [p for p, _ in openset.probes], templates, threshold.min_gap)
    right = np.array([who == truth for who, (_, truth) in zip(mated_who, openset.probes)])
    stranger_d, _ = _nearest(emb, openset, openset.strangers, templates, threshold.min_gap)

    def at(tau: float) -> dict:
        fnir = float(np.mean(~(right & (mated_d <= tau))))
        return {"tau": round(tau, 4), "fpir": float(np.mean(stranger_d <= tau)), "fnir": fnir,
                "rank1": 1.0 - fnir}

    taus = np.unique(np.concatenate([mated_d, stranger_d]))
    taus = taus[np.isfinite(taus)]  # the ambiguous: named at no tau
    curve = [at(float(t)) for t in taus[np.linspace(0, len(taus) - 1, min(len(taus), 400)).astype(int)]]
    return OpensetReport(
        enrolled=len(openset.enrolled), probes=len(openset.probes), strangers=len(openset.strangers),
        templates_per_person=len(next(iter(openset.enrolled.values()))), templates=templates,
        rank1_closed_set=float(np.mean(right)),
        at_fpir={f"{t:g}": at(tau_at_fpir(stranger_d, t)) for t in targets},
        at_default_tau={**at(threshold.tau), "fpir_target": threshold.fpir},
        curve=curve, fallbacks=fallbacks, setting=setting or {}, seed=seed)


def evaluate_openset(openset: OpenSet, embedder: LabelledEmbedder, threshold: Threshold, templates: str = "mean",
                     seed: int | None = None, on_image: Callable[[], None] = lambda: None) -> OpensetReport:
    """Embed every photo of the open set once (cached), then its report at ``threshold``."""
    check_templates(templates)
    paths = sorted({p for ps in openset.enrolled.values() for p in ps} | {p for p, _ in openset.probes}
                   | set(openset.strangers))
    emb, fallbacks = embedder.embed(paths, on_image)
    return openset_report(emb, openset, threshold, templates=templates, fallbacks=fallbacks,
                          setting=embedder.setting, seed=seed)
