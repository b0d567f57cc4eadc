"""The values that flow through facecli: image -> faces -> embeddings -> decisions.

Plain dataclasses with no behaviour beyond a few derived properties. This
module imports neither OpenCV nor onnxruntime (nor numpy at run time), so the
commands that only read a gallery or print help stay light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from facecli.errors import FaceCliError

if TYPE_CHECKING:
    import numpy as np

    from facecli.heads import LoadedHead


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


@dataclass
class Face:
    """A detected face, its model input crops and (once embedded) its unit embedding."""

    index: int  # in its image, largest first
    detection: Detection
    crops: tuple[np.ndarray, ...]  # one per model of the embedder
    embedding: np.ndarray | None = None  # the base model's, always (what a gallery stores)
    #: the projection head (``facecli tune``) its embedding is matched through; None: the embedding itself
    head: LoadedHead | None = None

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


@dataclass
class ImageResult:
    """Everything found in one input image, or the error that stopped it."""

    path: str
    faces: list[Face] = field(default_factory=list)
    error: FaceCliError | None = None
    sha256: str | None = None  # of the file's bytes (or of the array's pixels): the identity of a photo


# -- the gallery ---------------------------------------------------------------------
@dataclass(frozen=True)
class Template:
    """One face to enroll: its embedding and where it came from."""

    embedding: np.ndarray
    source: str
    sha256: str
    box: tuple[float, float, float, float]
    created: float | None = None  # when it was first enrolled (kept by `gallery copy`); None: now


@dataclass(frozen=True)
class HeadRecord:
    """The projection head a gallery is used with: its sha256, and where it was found when it was set."""

    sha256: str
    path: str


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
    (``--tau``) or is the model's 1:1 tau.
    """

    tau: float
    gallery_size: int | None = None
    fpir: float | None = None

    @property
    def source(self) -> str:
        return "fpir" if self.fpir is not None else "tau" if self.gallery_size is not None else "model"


@dataclass(frozen=True)
class Candidate:
    name: str
    distance: float


def decision_label(name: str | None, too_small: bool = False) -> str:
    """What is reported for a face (or a track): recognized, not recognized, or too small to identify."""
    return "too small to identify" if too_small else "recognized" if name else "not recognized"


@dataclass(frozen=True)
class Decision:
    """The 1:N answer for one face: ``name`` is None when nobody is within tau."""

    name: str | None
    distance: float | None  # to the nearest person, recognised or not
    candidates: list[Candidate]  # nearest first, top-k
    threshold: Threshold
    too_small: bool = False  # below the minimum face size: not named, whatever the distance

    @property
    def tau(self) -> float:
        return self.threshold.tau

    @property
    def candidate(self) -> str | None:
        """The nearest person, even when not recognised (how close it came)."""
        return self.candidates[0].name if self.candidates else None

    @property
    def label(self) -> str:
        return decision_label(self.name, self.too_small)


@dataclass(frozen=True)
class Verification:
    """A 1:1 decision between a probe photo and a reference (a photo, or an enrolled person)."""

    probe: ImageResult
    probe_face: Face
    distance: float
    threshold: Threshold
    reference: ImageResult | None = None  # photo against photo
    reference_face: Face | None = None
    claim: str | None = None  # photo against an enrolled person

    @property
    def tau(self) -> float:
        return self.threshold.tau

    @property
    def same(self) -> bool:
        return self.distance <= self.threshold.tau


@dataclass(frozen=True)
class Stored:
    """What enrolling one template did: ``added``, ``present`` (that person has this photo already) or
    ``taken`` (the same photo is enrolled as someone else: ``holder``)."""

    status: str
    holder: str | None = None


@dataclass
class EnrollResult:
    name: str
    path: str
    status: str  # "added", "present", "pending" (before the write) or "error"
    error: FaceCliError | None = None
    template: Template | None = None


@dataclass(frozen=True)
class ClusteredFace:
    result: ImageResult
    face: Face
    cluster: int  # 0 = the largest cluster


@dataclass(frozen=True)
class Match:
    """One template found by ``search``: nearest first."""

    rank: int
    name: str
    distance: float
    template: int
    source: str
