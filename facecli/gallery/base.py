"""What every gallery backend provides, and the decisions made against any of them.

A backend stores people and templates (``Template``: a unit embedding with its
source photo, content hash and face box) for one model, and answers the
questions matching needs: all templates as one matrix, the templates of one
person, a search index's candidates. On top of that, this class decides:
``identify`` (1:N with the threshold that follows the gallery's size) and
``distance_to`` (1:1 against an enrolled person), so every backend decides
the same way.

A gallery may be used with a projection head (``facecli tune``): meta records
its sha256 and where it was found (``head_sha256``, ``head_path``). Templates
stay the base model's embeddings whatever the head; faces matched against the
gallery must come through that head (``Face.head``) or are refused, and the
head is applied at match time to them and to the templates (every template,
exactly: an index holds base-model embeddings). So a head is added, changed or
removed (``set_head``) without re-enrolling anyone.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from facecli import decisions, matching
from facecli.errors import BadValue, GalleryError, HeadMismatch
from facecli.matching import TemplateMatrix
from facecli.modes import SEARCH_MODES
from facecli.values import Decision, Face, HeadRecord, PersonInfo, Stored, Template, Threshold

if TYPE_CHECKING:
    from facecli.gallery.search import Searcher
    from facecli.heads import LoadedHead

#: How far from 1 a stored template's norm may be (float32 rounding is ~1e-7): anything else is damage.
NORM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class GalleryState:
    """What a derived index must match: the model, and which templates exist."""

    model: str
    dim: int
    count: int  # templates
    max_id: int  # largest template id (ids only grow, except after removals)
    removals: int  # persons removed so far: any removal invalidates an index


def template_problem(blob: bytes, dim: int) -> str | None:
    """Why a stored template cannot be matched against (wrong size, not finite, not unit length), or None."""
    if len(blob) != 4 * dim:
        return f"{len(blob)} bytes, expected {4 * dim}"
    vector = np.frombuffer(blob, dtype="<f4")
    if not np.isfinite(vector).all():
        return "values that are not finite"
    norm = float(np.linalg.norm(vector))
    if not abs(norm - 1.0) < NORM_TOLERANCE:
        return f"norm {norm:.4f}, expected 1"
    return None


def stack_templates(blobs: list[bytes], ids: list[int], dim: int, location: str) -> np.ndarray:
    """Stored templates as a (T, dim) float32 matrix, each checked first: a damaged one is an error, never a match.

    A template scaled by 1000, with an infinite component, or whose bytes are
    misaligned would otherwise sit at distance 0 from strangers.
    """
    if not blobs:
        return np.empty((0, dim), dtype=np.float32)
    bad = [i for i, b in enumerate(blobs) if len(b) != 4 * dim]
    if bad:
        raise _damaged(location, ids[bad[0]], template_problem(blobs[bad[0]], dim))
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dim).astype(np.float32)
    return checked_matrix(matrix, ids, location)


def checked_matrix(matrix: np.ndarray, ids: list[int] | np.ndarray, location: str) -> np.ndarray:
    """``matrix`` (T, dim) float32 itself when every row is finite and of unit length; else an error naming the
    first damaged template (a backend that reads vectors natively checks them here, as ``stack_templates`` does)."""
    with np.errstate(over="ignore", invalid="ignore"):
        sound = np.isfinite(matrix).all(axis=1) & (np.abs(np.linalg.norm(matrix, axis=1) - 1.0) < NORM_TOLERANCE)
    if sound.all():
        return matrix
    i = int(np.argmin(sound))
    raise _damaged(location, int(ids[i]), template_problem(np.asarray(matrix[i], "<f4").tobytes(), matrix.shape[1]))


def _damaged(location: str, template: int, problem: str | None) -> GalleryError:
    return GalleryError(location, f"template {template} is damaged ({problem}); see `facecli gallery check`")


def head_problem(meta: dict[str, str]) -> str | None:
    """Why meta's head record is not what facecli writes (both keys, a sha256 and a path), or None."""
    sha, path = meta.get("head_sha256"), meta.get("head_path")
    if sha is None and path is None:
        return None
    if sha is None or not path or not re.fullmatch(r"[0-9a-f]{64}", sha):
        return f"meta head_sha256 {str(sha)[:40]!r}, head_path {str(path)[:40]!r} is not a head record facecli writes"
    return None


def head_record(meta: dict[str, str], location: str) -> HeadRecord | None:
    """The head meta records (None: none), or an error when the record is damaged."""
    problem = head_problem(meta)
    if problem is not None:
        raise GalleryError(location, f"{problem}; see `facecli gallery check`")
    return None if "head_sha256" not in meta else HeadRecord(meta["head_sha256"], meta["head_path"])


def box_problem(text: object) -> str | None:
    """Why a stored box is not the JSON list of four numbers facecli writes, or None."""
    try:
        box = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        box = None
    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
        return f"box {str(text)[:40]!r} is not four numbers"
    return None


def stored_box(text: object, template: int, location: str) -> list[float]:
    """A stored face box, or an error naming the template whose box is not what facecli writes."""
    problem = box_problem(text)
    if problem is not None:
        raise _damaged(location, template, problem)
    return json.loads(text)  # type: ignore[arg-type]


class CandidateIndex(Protocol):
    """What proposes, for a batch of faces, the templates that may be their nearest (``Gallery.search_index``)."""

    def candidates(self, faces: np.ndarray, count: int) -> np.ndarray:
        """Template ids of the ``count`` nearest templates of each face (their union)."""


class Gallery(ABC):
    """One open gallery; use it as a context manager."""

    location: str  # how messages name it (a path, or a URL without its password)

    # -- what it was built with ---------------------------------------------------
    @abstractmethod
    def meta(self) -> dict[str, str]:
        """model, dim, created, and settings such as fpir."""

    @property
    def model(self) -> str:
        return self.meta()["model"]

    @property
    def dim(self) -> int:
        return int(self.meta()["dim"])

    def fpir(self) -> float | None:
        """The share of strangers `identify` may name by default, when the gallery sets one."""
        value = self.meta().get("fpir")
        return None if value is None else float(value)

    @abstractmethod
    def set_fpir(self, fpir: float | None) -> None:
        """Store (or with None, forget) the gallery's FPIR target."""

    def head(self) -> HeadRecord | None:
        """The projection head this gallery is used with (its sha256 and path), or None; read once (and again
        after each write), as the templates are."""
        if "_head" not in self.__dict__:
            self.__dict__["_head"] = head_record(self.meta(), self.location)
        return self.__dict__["_head"]

    @abstractmethod
    def set_head(self, head: HeadRecord | None) -> None:
        """Record (or with None, forget) the head this gallery is used with; the templates stay as they are."""

    def check_head(self, head: LoadedHead | None) -> None:
        """Refuse faces that come through another head (or none) than the one this gallery is used with."""
        record = self.head()
        if (None if record is None else record.sha256) != (None if head is None else head.sha256):
            raise HeadMismatch(self.location, None if record is None else record.path,
                               None if record is None else record.sha256,
                               None if head is None else str(head.path), None if head is None else head.sha256)

    # -- reading ------------------------------------------------------------------
    @abstractmethod
    def persons(self) -> list[PersonInfo]: ...

    @abstractmethod
    def person_count(self) -> int: ...

    @abstractmethod
    def has_person(self, name: str) -> bool: ...

    @abstractmethod
    def templates_of(self, name: str) -> list[dict[str, Any]]:
        """One person's templates: id, source, sha256, box, created (no embeddings)."""

    @abstractmethod
    def embeddings_of(self, name: str) -> np.ndarray:
        """(T, dim) float32: one person's templates."""

    @abstractmethod
    def template_matrix(self) -> TemplateMatrix:
        """Every template in one matrix, rows grouped by person (read once, then reused)."""

    @abstractmethod
    def templates_by_id(self, ids: np.ndarray, whole_persons: bool = False) -> TemplateMatrix:
        """The templates with these ids (or all templates of their persons) as a TemplateMatrix."""

    @abstractmethod
    def sources_of(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Template id -> its source photo, content hash, face box and when it was enrolled."""

    @abstractmethod
    def state(self) -> GalleryState: ...

    @abstractmethod
    def iter_embeddings(self, after_id: int = 0, chunk: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(template ids, embeddings) in id order, ``chunk`` rows at a time, after ``after_id``."""

    @abstractmethod
    def unused_names(self, prefix: str, count: int) -> list[str]:
        """``count`` names ``prefix1``, ``prefix2``… after the highest one already enrolled."""

    @abstractmethod
    def check(self) -> list[str]:
        """Problems found in the stored data; [] when sound."""

    @abstractmethod
    def stats(self) -> dict[str, Any]: ...

    # -- search -------------------------------------------------------------------
    @property
    def exact_max(self) -> int:
        """The largest gallery searched exactly by default (``search.EXACT_MAX``); above it, ``search_index``."""
        from facecli.gallery.search import EXACT_MAX

        return EXACT_MAX

    @abstractmethod
    def search_index(self, log: Callable[[str], None] = lambda _m: None) -> CandidateIndex:
        """The approximate index that proposes candidates above ``exact_max``, brought up to date if needed."""

    def searcher(self, mode: str = "auto", candidates: int = 64, log: Callable[[str], None] = lambda _m: None,
                 whole_persons: bool = False) -> Searcher:
        """What finds each face's candidate templates: all of them, or an index's proposals."""
        from facecli.gallery.search import Searcher

        return Searcher(self, mode, candidates, log, whole_persons)

    # -- writing ------------------------------------------------------------------
    @abstractmethod
    def enroll(self, entries: Iterable[tuple[str, Template]]) -> list[Stored]:
        """Add (name, template) pairs in one transaction; per entry, what happened (``Stored``)."""

    @abstractmethod
    def remove(self, name: str) -> int:
        """Delete a person and their templates (one transaction); the number of templates removed."""

    def rename(self, old: str, new: str) -> None:
        """Give an enrolled person another name (one no one else has)."""
        from facecli.inputs import check_person_name

        self._rename(old, check_person_name(new))

    @abstractmethod
    def _rename(self, old: str, new: str) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the backends share -------------------------------------------------
    @abstractmethod
    def _stack(self, blobs: list[bytes], ids: list[int]) -> np.ndarray:
        """Stored embeddings (as the backend reads them) -> a checked (T, dim) float32 matrix."""

    def _matrix_of(self, rows: list[tuple[str, bytes, int]]) -> TemplateMatrix:
        """(name, stored embedding, template id) rows, grouped by person, as a TemplateMatrix."""
        names: list[str] = []
        index: list[int] = []
        for name, _, _ in rows:
            if not names or names[-1] != name:
                names.append(name)
            index.append(len(names) - 1)
        ids = [r[2] for r in rows]
        return TemplateMatrix(names, np.asarray(index, dtype=np.int64), self._stack([r[1] for r in rows], ids),
                              np.array(ids, dtype=np.int64))

    # -- decisions ----------------------------------------------------------------
    def threshold(self, tau: float | None = None, fpir: float | None = None, force: bool = False,
                  head: LoadedHead | None = None) -> Threshold:
        """The 1:N threshold for this gallery's size and stored FPIR (``decisions.identification_threshold``),
        for faces through ``head`` (the one this gallery is used with, or an error)."""
        self.check_head(head)
        return decisions.identification_threshold(self.model, self.person_count(), tau, fpir, self.fpir(), force,
                                                  head)

    def identify(self, faces: list[Face], threshold: Threshold | None = None, top_k: int = 1,
                 templates: str = "mean", min_face: float = decisions.MIN_FACE, search: str = "auto",
                 log: Callable[[str], None] = lambda _m: None) -> list[Decision]:
        """1:K for embedded faces: each one's nearest person within the threshold, or nobody.

        ``threshold`` defaults to ``self.threshold()`` (FPIR-calibrated for this
        gallery's size). Faces smaller than ``min_face`` pixels are never named.
        """
        if not faces:
            return []
        head = self._check_embedded(faces)
        threshold = threshold or self.threshold(head=head)
        vectors = matching.face_vectors(faces)
        candidates = self.candidates_for(vectors, head, search, max(64, 8 * top_k), templates == "mean", log)
        found = matching.identify(vectors, candidates, threshold, top_k, templates)
        return decisions.too_small(faces, found, min_face)

    def distance_to(self, faces: list[Face], name: str, templates: str = "mean") -> tuple[int, float]:
        """Which of ``faces`` is nearest to the enrolled person ``name``, and its distance (1:1 against a claim)."""
        if not self.has_person(name):
            raise BadValue("claim", name, f"no such person in {self.location}")
        head = self._check_embedded(faces)
        stored = self.embeddings_of(name)
        reference = matching.person_references(stored if head is None else head.apply(stored), templates)
        i, _, d = matching.closest_pair(matching.face_vectors(faces), reference)
        return i, d

    def candidates_for(self, vectors: np.ndarray, head: LoadedHead | None = None, search: str = "auto",
                       candidates: int = 64, whole_persons: bool = False,
                       log: Callable[[str], None] = lambda _m: None) -> TemplateMatrix:
        """The templates that probe ``vectors`` are scored against: every template, or above ``exact_max`` (or
        with ``search`` "index") an index's ``candidates`` nearest (``whole_persons``: with all their person's
        templates). With a ``head``, every template through it: the index holds base-model embeddings, so a
        gallery used with a head is searched exactly ("index" is refused)."""
        self.check_head(head)
        if head is not None:
            if search not in SEARCH_MODES:
                raise BadValue("search", search, f"choose from {', '.join(SEARCH_MODES)}")
            if search == "index":
                raise BadValue("search", search, "a gallery used with a projection head is searched exactly: its "
                                                 "index holds the base model's embeddings")
            return self.projected(head)
        key = (search, candidates, whole_persons)
        cache = self.__dict__.setdefault("_searchers", {})
        if key not in cache:  # one searcher per setting for the life of this object (an index is loaded once)
            cache[key] = self.searcher(search, candidates, log, whole_persons)
        return cache[key].templates_for(vectors)

    def projected(self, head: LoadedHead) -> TemplateMatrix:
        """Every template through ``head``, computed once per head for the life of this object (and after each
        write); mean templates are then the means of the head's outputs."""
        cache = self.__dict__.setdefault("_projected", {})
        if head.sha256 not in cache:
            cache[head.sha256] = head.apply_templates(self.template_matrix())
        return cache[head.sha256]

    def _changed(self) -> None:
        """Called by a backend after each committed write: what was derived from the old content is gone."""
        for derived in ("_searchers", "_projected", "_head"):
            self.__dict__.pop(derived, None)

    def _check_embedded(self, faces: list[Face]) -> LoadedHead | None:
        """Refuse faces of another embedding size, or through another head than the gallery's; their head."""
        dims = {None if f.embedding is None else len(f.embedding) for f in faces}
        if dims != {self.dim}:
            raise GalleryError(self.location, f"holds {self.dim}-d {self.model} templates; these faces are "
                                              f"embedded with {sorted(dims, key=str)}-d embeddings")
        head = faces[0].head
        if any((f.head is None) != (head is None) or (head is not None and f.head.sha256 != head.sha256)
               for f in faces):
            raise GalleryError(self.location, "these faces come through different projection heads")
        self.check_head(head)
        return head
