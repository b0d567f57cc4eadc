"""Every decision rule in one place: which tau decides, which model a command uses, which faces are too small or
too poor to name.

The numbers behind the rules live in the model manifest (each model's 1:1
tau and its impostor-distance quantiles); the rules here turn them and the
caller's settings into a ``Threshold`` that every result carries, so each
row says how it was decided.

- 1:1 (``verify``, ``cluster``): an explicit tau, else the model's
  ``default_tau``, the threshold of best LFW pair accuracy.
- 1:N (``identify``, ``watch``, ``eval openset``): an explicit tau, else the
  tau whose expected share of strangers given a name (FPIR) is the requested
  one, else the gallery's stored one, else ``DEFAULT_FPIR``, against the
  gallery's number of people (``calibration.tau_for``).

- Faces too small (``MIN_FACE``) or too poor (quality under the model's
  ``min_quality``, ``facecli.quality``) keep their nearest candidate and
  distance but are never named: on such faces a name is a guess.
- 1:N, a face within tau of two people whose distances differ by less than
  the model's ``min_gap`` is ambiguous, never named (``matching.decide_nearest``
  applies it with tau): on poor photos, and between two enrolled people who
  look alike, the nearer of two is often the wrong one.

With a projection head (``facecli tune``), distances are between the head's
outputs, so both defaults come from the head's own measurements on its
validation people (its metadata): its 1:1 tau and its impostor quantiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from facecli.calibration import DEFAULT_FPIR, check_fpir, tau_for
from facecli.errors import BadValue, LooseThreshold
from facecli.models import DEFAULT_MODEL, pipeline_spec
from facecli.quality import QualityModel
from facecli.values import Decision, Detection, Face, Threshold

if TYPE_CHECKING:
    from facecli.heads import LoadedHead
    from facecli.models import PipelineSpec

#: Pixels: faces whose box is narrower or shorter are never named; below it fewer than half of
#: enrolled faces are named (bench/ACCURACY.md, "Small faces").
MIN_FACE = 20.0


#: From this tau on, faces whose embeddings are orthogonal (unrelated) or opposite count as the same person.
LOOSE_TAU = 2.0


#: The most candidates a face is given (identify's people, search's templates): a list past it is no answer to
#: read, and the CSV header alone of a billion candidates exhausted memory before any image was read.
MAX_TOP_K = 1000


def check_top_k(top_k: int) -> int:
    if not 1 <= top_k <= MAX_TOP_K:
        raise BadValue("top_k", top_k, f"must be between 1 and {MAX_TOP_K}")
    return int(top_k)


def check_tau(tau: float, force: bool = False) -> float:
    """A hand-given tau: squared L2 between unit vectors lies in 0-4, and below 2 unless ``force``."""
    if not 0.0 <= tau <= 4.0:
        raise BadValue("tau", tau, "must be between 0 and 4 (squared L2 of unit vectors)")
    if tau >= LOOSE_TAU and not force:
        raise LooseThreshold("tau", tau, f"at {LOOSE_TAU:g} or more, faces whose embeddings are unrelated "
                                         "(orthogonal) count as the same person: nearly every stranger would match")
    return float(tau)


def calibration(model: str, head: LoadedHead | None = None) -> PipelineSpec:
    """What the default taus are read from: the model's manifest entry, or with a head, the head's measurements."""
    spec = pipeline_spec(model)
    return spec if head is None else head.calibration(spec)


def verification_threshold(model: str, tau: float | None = None, force: bool = False,
                           head: LoadedHead | None = None) -> Threshold:
    """The 1:1 threshold: ``tau`` if given, else the model's tau of best LFW pair accuracy (with a ``head``, the
    head's best tau on its validation people)."""
    if tau is not None:
        return Threshold(check_tau(tau, force))
    return Threshold(float(calibration(model, head).default_tau))


def identification_threshold(model: str, gallery_size: int, tau: float | None = None, fpir: float | None = None,
                             stored_fpir: float | None = None, force: bool = False,
                             head: LoadedHead | None = None, gap: float | None = None) -> Threshold:
    """The 1:N threshold against ``gallery_size`` people.

    ``tau`` fixes it by hand (the threshold then has no FPIR); otherwise it is
    the tau whose expected FPIR is ``fpir``, else the gallery's ``stored_fpir``,
    else ``DEFAULT_FPIR``, rounded to 4 decimals so that every caller (identify,
    watch, eval openset) uses exactly the same number; with a ``head``, from the
    head's impostor quantiles. Its ``min_gap`` is ``gap``, else the model's
    (``min_gap``), whichever way tau was set.
    """
    least = min_gap(model, gap, head)
    if tau is not None:
        return Threshold(check_tau(tau, force), gallery_size, None, least)
    target = check_fpir(fpir if fpir is not None else stored_fpir if stored_fpir is not None else DEFAULT_FPIR)
    return Threshold(round(tau_for(calibration(model, head), max(gallery_size, 1), target), 4), gallery_size, target,
                     least)


def is_ambiguous(nearest, runner_up, min_gap: float):
    """Whether a face is ambiguous: its second-nearest person (``runner_up``: None or inf when there is none) is
    less than ``min_gap`` farther than its nearest; never named then. Scalars, or numpy arrays element-wise."""
    return runner_up is not None and runner_up - nearest < min_gap


def min_gap(model: str, requested: float | None = None, head: LoadedHead | None = None) -> float:
    """How much nearer than the runner-up the nearest person must be for a 1:N name: ``requested`` (0 disables
    the rule), else the model's (the manifest's ``ambiguity``, chosen on LFW by bench/quality.py); none (0) for a
    model or head it was not measured for."""
    if requested is None:
        return float(calibration(model, head).ambiguity.get("min_gap", 0.0))
    if not 0.0 <= requested <= 4.0:
        raise BadValue("min_gap", requested, "must be between 0 and 4 (squared L2 of unit vectors; 0: no such rule)")
    return float(requested)


def choose_model(requested: str | None = None, gallery_model: str | None = None,
                 head: LoadedHead | None = None) -> str:
    """The model a command (or ``facecli.load``) uses: the one asked for, else the model of the gallery in use
    (a gallery keeps the model it was built with, so its users need not repeat it), else the projection head's
    base model, else the default. A request for another model than the gallery's is refused when the engine
    binds the gallery (``Gallery.bind``)."""
    return requested or gallery_model or (head.base_model if head is not None else DEFAULT_MODEL)


def is_too_small(detection: Detection, min_face: float = MIN_FACE) -> bool:
    """A face narrower or shorter than ``min_face`` pixels: never named, never enrolled."""
    return is_too_small_size(min(detection.width, detection.height), min_face)


def is_too_small_size(size: float, min_face: float = MIN_FACE) -> bool:
    """A face whose shorter side is ``size`` pixels is too small to name (``is_too_small``)."""
    return size < min_face


def unjudged(face: Face, min_face: float = MIN_FACE, min_quality: float = 0.0) -> str | None:
    """Why a face cannot be judged 1:1 (``verify --claim``): "too small" under ``min_face`` pixels, where fewer than
    half of enrolled faces are named, or "too poor" under ``min_quality`` (``is_too_poor``); None when it can be.
    Such a face is never said to be the claimed person."""
    if is_too_small(face.detection, min_face):
        return "too small"
    return "too poor" if is_too_poor(face.quality, min_quality) else None


def too_small(faces: list[Face], decisions: list[Decision], min_face: float) -> list[Decision]:
    """Faces narrower or shorter than ``min_face`` pixels keep their nearest candidate but are never named."""
    return [replace(d, name=None, too_small=True, ambiguous=False) if is_too_small(f.detection, min_face) else d
            for f, d in zip(faces, decisions)]


#: With several faces in a photo of a person, the face nearest to their other photos is theirs only when the next
#: face is farther by at least this much: closer, the photo is ambiguous (twins, a poster of them behind).
AGREEMENT_MARGIN = 0.3


def agreeing_face(distances: Sequence[float], tau: float) -> tuple[int | None, str | None]:
    """Which of a photo's faces is the person's, from each face's distance to their other photos: the nearest,
    when it is within the 1:1 ``tau`` and clearly nearer than the next (``AGREEMENT_MARGIN``); else None and
    why not ("none agrees", "ambiguous")."""
    order = sorted(range(len(distances)), key=lambda i: distances[i])
    best = order[0]
    if distances[best] > tau:
        return None, "none agrees"
    if is_ambiguous(distances[best], distances[order[1]] if len(order) > 1 else None, AGREEMENT_MARGIN):
        return None, "ambiguous"
    return best, None


def min_quality(model: str, requested: float | None = None) -> float:
    """The quality under which a face of ``model`` is never named: ``requested`` (0 disables the rule), else the
    threshold of the model's quality model (the manifest's, chosen on LFW by bench/quality.py). A model without
    a quality model judges no face (0), and refuses a threshold asked of it."""
    model_q = QualityModel.of(pipeline_spec(model))
    if requested is None:
        return 0.0 if model_q is None else model_q.min_quality
    if not 0.0 <= requested <= 1.0:
        raise BadValue("min_quality", requested, "must be between 0 and 1 (0: name faces of any quality)")
    if requested > 0 and model_q is None:
        raise BadValue("min_quality", requested, f"model {model} has no face quality measure: use fusion or sface")
    return float(requested)


def is_too_poor(quality: float | None, min_quality: float) -> bool:
    """A face of this ``quality`` (``Face.quality``) is too poor to judge: never named, never a basis for a 1:1
    decision either ("cannot judge"), and a poor template to enroll. A face without a quality (a model without
    a quality model) never is."""
    return quality is not None and quality < min_quality


def too_poor(faces: list[Face], decisions: list[Decision], min_quality: float) -> list[Decision]:
    """Faces under ``min_quality`` (and not too small already) keep their nearest candidate but are never named."""
    return [replace(d, name=None, too_poor=True, ambiguous=False)
            if not d.too_small and is_too_poor(f.quality, min_quality) else d
            for f, d in zip(faces, decisions)]


def liveness(blinked: bool, flat: bool | None, challenge: str | None, complete: bool) -> tuple[bool | None, str]:
    """Whether a face is live, and why, from its checks (``facecli.liveness``): a face that moves like a flat
    picture (``flat``), or fails its challenge, is not; one that blinked (and passed its challenge, if it was
    given one) is; otherwise it is not once its window has been watched (``complete``), and undecided before.
    Depth that could not tell (``flat`` None: too little motion) neither helps nor hurts: the blink decides."""
    if flat:
        return False, "moves like a flat picture"
    if challenge == "failed":
        return False, "did not follow the challenge in time"
    if blinked and challenge in (None, "passed"):
        return True, "blinked" + (" and followed the challenge" if challenge else "")
    if not complete:
        return None, "still watching"
    return False, "no blink in the window" if not blinked else "did not follow the challenge in time"
