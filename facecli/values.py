"""The values that flow through facecli: image -> faces -> embeddings -> decisions.

Plain dataclasses with no behaviour beyond a few derived properties (and
``iou``, the overlap of two face boxes that tracking and the gallery share), and
reprs that show what a person reads them for (boxes, scores, distances,
names, an embedding's size as ``<640-d>``), never the arrays themselves: a
face holds an embedding and crops of thousands of numbers. This module
imports neither OpenCV nor onnxruntime (nor numpy at run time), so the
commands that only read a gallery or print help stay light.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from facecli.errors import FaceCliError

if TYPE_CHECKING:
    import numpy as np

    from facecli.choosing import Chosen
    from facecli.heads import LoadedHead


def _box(box: tuple[float, float, float, float]) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in box) + ")"


#: How much two boxes of one photo overlap (``iou``) when they are the same face: the one-face-one-person rule
#: of a gallery, and a tagged XMP region's face.
SAME_FACE_IOU = 0.5


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``[x1, y1, x2, y2]`` boxes: 1 the same box, 0 apart."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _array(a: np.ndarray | None) -> str:
    """An array as its shape: ``<640-d>`` for a vector, ``<112x112x3>`` otherwise."""
    if a is None:
        return "None"
    return f"<{a.shape[0]}-d>" if a.ndim == 1 else "<" + "x".join(map(str, a.shape)) + ">"


def _distance(d: float | None) -> str:
    return "None" if d is None else f"{d:.4f}"


# -- image -> faces ---------------------------------------------------------------
@dataclass(frozen=True)
class Detection:
    """One face: box ``[x1, y1, x2, y2]`` in pixels of the original image."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None  # (5, 2): eyes, nose, mouth corners (image-left first)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def scaled(self, factor: float) -> Detection:
        """The same detection in pixels of an image ``factor`` times larger."""
        if factor == 1:
            return self
        landmarks = None if self.landmarks is None else self.landmarks * factor
        return Detection(tuple(v * factor for v in self.box), self.score, landmarks)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"Detection(box={_box(self.box)}, score={self.score:.3f})"


@dataclass(frozen=True)
class QualitySignals:
    """What a face's quality is measured from (``facecli.quality``): all known once it is embedded, at no
    extra network run. ``mirror`` is None for a model run without its mirror image."""

    size: float  # the shorter side of its box, pixels
    score: float  # the detector's confidence
    sharpness: float  # variance of the Laplacian of the grey input crop
    brightness: float  # mean grey level of the crop, 0-255
    contrast: float  # standard deviation of the grey levels
    clipped: float  # share of the crop's pixels at black or white (<= 5 or >= 250)
    norm: float  # length of the measuring model's raw output (the mean over crop and mirror)
    mirror: float | None = None  # cosine of the raw embeddings of the crop and of its mirror image


@dataclass
class Face:
    """A detected face, its model input crops and (once embedded) its unit embedding and quality."""

    index: int  # in its image, largest first
    detection: Detection
    crops: tuple[np.ndarray, ...]  # one per model of the embedder
    embedding: np.ndarray | None = None  # the base model's, always (what a gallery stores)
    #: the projection head (``facecli tune``) its embedding is matched through; None: the embedding itself
    head: LoadedHead | None = None
    signals: QualitySignals | None = None  # measured when embedded
    #: how well it can be judged, 0-1 (``facecli.quality``); None: not embedded, or a model without a quality model
    quality: float | None = None

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.detection.box

    @property
    def landmarks(self) -> np.ndarray | None:
        return self.detection.landmarks

    @property
    def crop(self) -> np.ndarray:
        """The first model's input crop (what `detect --crops` writes)."""
        return self.crops[0]

    def __repr__(self) -> str:
        head = f", head={self.head.path.name!r}" if self.head is not None else ""
        quality = f", quality={self.quality:.3f}" if self.quality is not None else ""
        return (f"Face(index={self.index}, box={_box(self.box)}, score={self.detection.score:.3f}, "
                f"embedding={_array(self.embedding)}{quality}{head})")


@dataclass
class ImageResult:
    """Everything found in one input image, or the error that stopped it."""

    path: str
    faces: list[Face] = field(default_factory=list)
    error: FaceCliError | None = None
    sha256: str | None = None  # of the file's bytes (or of the array's pixels): the identity of a photo
    size: tuple[int, int] | None = None  # (width, height) as displayed (EXIF orientation applied): what boxes are in

    def __repr__(self) -> str:
        if self.error is not None:
            return f"ImageResult(path={self.path!r}, error={self.error!r})"
        faces = f"<{len(self.faces)} face{'' if len(self.faces) == 1 else 's'}>"
        sha = f", sha256='{self.sha256[:12]}...'" if self.sha256 else ""
        return f"ImageResult(path={self.path!r}, faces={faces}{sha})"


# -- the gallery ---------------------------------------------------------------------
def stored_source(path: str) -> str:
    """How a template's source is stored: a file's absolute path, since a relative one means nothing once the
    shell is elsewhere; what is not a file ("<array>", "<face>") as it is."""
    return path if path.startswith("<") and path.endswith(">") else os.path.abspath(path)


@dataclass(frozen=True)
class Template:
    """One face to enroll: its embedding and where it came from."""

    embedding: np.ndarray
    source: str
    sha256: str
    box: tuple[float, float, float, float]
    created: float | None = None  # when it was first enrolled (kept by `gallery copy`); None: now

    def __repr__(self) -> str:
        return (f"Template(source={self.source!r}, sha256='{self.sha256[:12]}...', box={_box(self.box)}, "
                f"embedding={_array(self.embedding)})")


@dataclass(frozen=True)
class HeadRecord:
    """The projection head a gallery is used with: its sha256, and where it was found when it was set; ``data``:
    its file's bytes, for the gallery to keep (``Gallery.set_head``), when they are at hand."""

    sha256: str
    path: str
    data: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class PersonInfo:
    name: str
    templates: int
    created: float


# -- decisions -------------------------------------------------------------------------
@dataclass(frozen=True)
class Threshold:
    """The tau a decision was made with, and where it came from.

    ``fpir`` is the share of strangers the tau was computed to let through
    against ``gallery_size`` people (1:N), or None when it was given by hand
    (``--tau``) or is the model's 1:1 tau. ``min_gap`` (1:N): a face whose
    second-nearest person is within it of the nearest is ambiguous, never
    named (0: no such rule).
    """

    tau: float
    gallery_size: int | None = None
    fpir: float | None = None
    min_gap: float = 0.0

    @property
    def source(self) -> str:
        return "fpir" if self.fpir is not None else "tau" if self.gallery_size is not None else "model"

    def __repr__(self) -> str:
        size = f", gallery_size={self.gallery_size}" if self.gallery_size is not None else ""
        fpir = f", fpir={self.fpir:g}" if self.fpir is not None else ""
        gap = f", min_gap={self.min_gap:g}" if self.min_gap else ""
        return f"Threshold(tau={self.tau:.4f}{size}{fpir}{gap})"


@dataclass(frozen=True)
class Candidate:
    name: str
    distance: float

    def __repr__(self) -> str:
        return f"Candidate(name={self.name!r}, distance={_distance(self.distance)})"


def decision_label(name: str | None, too_small: bool = False, too_poor: bool = False, ambiguous: bool = False) -> str:
    """What is reported for a face (or a track): recognized, not recognized, too small or too poor to identify, or
    ambiguous (two enrolled people about as near)."""
    if too_small:
        return "too small to identify"
    if too_poor:
        return "too poor to identify"
    return "ambiguous" if ambiguous else "recognized" if name else "not recognized"


@dataclass(frozen=True)
class Decision:
    """The 1:N answer for one face: ``name`` is None when nobody is within tau."""

    name: str | None
    distance: float | None  # to the nearest person, recognised or not
    candidates: list[Candidate]  # nearest first, top-k
    threshold: Threshold
    too_small: bool = False  # below the minimum face size: not named, whatever the distance
    too_poor: bool = False  # below the minimum face quality: not named, whatever the distance
    ambiguous: bool = False  # within tau, but another person is within the threshold's min_gap: not named

    @property
    def tau(self) -> float:
        return self.threshold.tau

    @property
    def candidate(self) -> str | None:
        """The nearest person, even when not recognised (how close it came)."""
        return self.candidates[0].name if self.candidates else None

    @property
    def label(self) -> str:
        return decision_label(self.name, self.too_small, self.too_poor, self.ambiguous)

    def __repr__(self) -> str:
        shown = ", ".join(map(repr, self.candidates[:3])) + (", ..." if len(self.candidates) > 3 else "")
        small = ", too_small=True" if self.too_small else ", too_poor=True" if self.too_poor else \
            ", ambiguous=True" if self.ambiguous else ""
        return (f"Decision(name={self.name!r}, distance={_distance(self.distance)}, tau={self.tau:.4f}, "
                f"candidates=[{shown}]{small})")


#: What a 1:1 decision can be: the probe has no face (a negative answer), its face cannot be judged (too small or
#: too poor: never "same", whatever its distance), or the distance decides.
NO_FACE, CANNOT_JUDGE, SAME, DIFFERENT = "no face", "cannot judge", "same", "different"


@dataclass(frozen=True)
class Verification:
    """A 1:1 decision between a probe photo and a reference (a photo, or an enrolled person).

    ``probe_face`` is None when the probe has no face (``decision`` "no face"); ``unjudged`` says why its face
    cannot be judged ("too small", "too poor"), which makes the decision "cannot judge" whatever the distance.
    """

    probe: ImageResult
    probe_face: Face | None
    distance: float | None
    threshold: Threshold
    reference: ImageResult | None = None  # photo against photo
    reference_face: Face | None = None
    claim: str | None = None  # photo against an enrolled person
    faces: int = 1  # faces found in the probe
    unjudged: str | None = None

    @property
    def tau(self) -> float:
        return self.threshold.tau

    @property
    def same(self) -> bool:
        return self.decision == SAME

    @property
    def decision(self) -> str:
        if self.probe_face is None or self.distance is None:
            return NO_FACE
        if self.unjudged is not None:
            return CANNOT_JUDGE
        return SAME if self.distance <= self.threshold.tau else DIFFERENT

    def __repr__(self) -> str:
        against = f"claim={self.claim!r}" if self.claim is not None else \
            f"reference={self.reference.path if self.reference else None!r}"
        return (f"Verification(decision={self.decision!r}, distance={_distance(self.distance)}, "
                f"tau={self.tau:.4f}, probe={self.probe.path!r}, {against})")


@dataclass(frozen=True)
class Stored:
    """What enrolling one template did: ``added``; ``present`` (that person has this face of this photo
    already); ``taken`` (this face of this photo is enrolled as someone else: ``holder``); or ``duplicate``
    (that person, ``holder``, has another face of this photo: one face per photo per person)."""

    status: str
    holder: str | None = None


@dataclass
class EnrollResult:
    name: str | None  # None: a cluster none of whose faces could be enrolled (``enroll_clusters``)
    path: str
    status: str  # "added", "present", "pending" (before the write) or "error"
    error: FaceCliError | None = None
    template: Template | None = None
    chosen: Chosen | None = None  # which face of the photo, and how it was chosen

    quality: float | None = None  # of the face enrolled
    too_poor: bool = False  # enrolled, but its quality is under the model's min_quality: a poor template

    def __repr__(self) -> str:
        error = f", error={self.error!r}" if self.error is not None else ""
        return f"EnrollResult(name={self.name!r}, path={self.path!r}, status={self.status!r}{error})"


@dataclass(frozen=True)
class ClusteredFace:
    result: ImageResult
    face: Face
    cluster: int  # 0 = the largest cluster

    def __repr__(self) -> str:
        return f"ClusteredFace(cluster={self.cluster}, path={self.result.path!r}, face={self.face!r})"


@dataclass(frozen=True)
class Match:
    """One template found by ``search``: nearest first."""

    rank: int
    name: str
    distance: float
    template: int
    source: str
