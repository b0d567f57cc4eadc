"""Matching faces against any gallery: 1:N with the threshold that follows its size, 1:1 against a claim.

A gallery may be used with a projection head (``facecli tune``): meta records
its sha256 and where it was found, and the gallery keeps its bytes
(``keptheads``). Templates stay the base model's
embeddings whatever the head; faces matched against the gallery must come
through that head (``Face.head``) or are refused, and the head is applied at
match time to them and to the templates (every template, exactly: an index
holds base-model embeddings). So a head is added, changed or removed
(``Gallery.set_head``) without re-enrolling anyone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from facecli import decisions, matching
from facecli.errors import BadValue, GalleryError, HeadMismatch
from facecli.gallery.keptheads import kept_head
from facecli.gallery.search import Searcher, check_search
from facecli.values import Match, Verification

if TYPE_CHECKING:
    from facecli.gallery.store import Gallery
    from facecli.heads import LoadedHead
    from facecli.matching import TemplateMatrix
    from facecli.values import Decision, Face, ImageResult, Threshold


def check_head(gallery: Gallery, head: LoadedHead | None) -> None:
    """Refuse faces that come through another head (or none) than the one the gallery is used with."""
    record = gallery.head()
    if (None if record is None else record.sha256) != (None if head is None else head.sha256):
        raise HeadMismatch(gallery.location, None if record is None else record.path,
                           None if record is None else record.sha256,
                           None if head is None else str(head.path), None if head is None else head.sha256,
                           kept_head(gallery) is not None)


def threshold(gallery: Gallery, tau: float | None = None, fpir: float | None = None, force: bool = False,
              head: LoadedHead | None = None, gap: float | None = None) -> Threshold:
    """The 1:N threshold for this gallery's size and stored FPIR (``decisions.identification_threshold``), for
    faces through ``head`` (the one the gallery is used with, or an error)."""
    check_head(gallery, head)
    return decisions.identification_threshold(str(gallery.model), gallery.person_count(), tau, fpir, gallery.fpir(),
                                              force, head, gap)


def identify(gallery: Gallery, faces: list[Face], threshold: Threshold, top_k: int = 1, templates: str = "mean",
             min_face: float = decisions.MIN_FACE, search: str = "auto",
             log: Callable[[str], None] = lambda _m: None, min_quality: float = 0.0) -> list[Decision]:
    """1:K for embedded faces: each one's nearest person within ``threshold``, or nobody; faces smaller than
    ``min_face`` pixels, or of a quality under ``min_quality``, are never named."""
    if not faces:
        return []
    head = _check_embedded(gallery, faces)
    found = decide(gallery, matching.face_vectors(faces), threshold, head, top_k, templates, search, log)
    return decisions.too_poor(faces, decisions.too_small(faces, found, min_face), min_quality)


def decide(gallery: Gallery, vectors: np.ndarray, threshold: Threshold, head: LoadedHead | None = None,
           top_k: int = 1, templates: str = "mean", search: str = "auto",
           log: Callable[[str], None] = lambda _m: None) -> list[Decision]:
    """1:K for face vectors (through ``head`` already): what ``identify`` decides before faces too small to name
    are set aside (``find`` decides indexed faces with it, so both give the same names)."""
    return matching.identify(vectors, candidates(gallery, vectors, head, search, max(64, 8 * top_k),
                                                 templates == "mean", log), threshold, top_k, templates)


def claim_distances(gallery: Gallery, faces: list[Face], name: str, templates: str = "mean") -> np.ndarray:
    """Each face's distance to the enrolled person ``name`` (1:1 against a claim)."""
    stored = gallery.embeddings_of(name)
    if not len(stored):
        raise BadValue("claim", name, f"no such person in {gallery.location}")
    head = _check_embedded(gallery, faces)
    reference = matching.person_references(stored if head is None else head.apply(stored), templates)
    return matching.sq_distances(matching.face_vectors(faces), reference).min(axis=1)


def claim_decisions(gallery: Gallery, result: ImageResult, name: str, threshold: Threshold, all_faces: bool = False,
                    templates: str = "mean", min_face: float = decisions.MIN_FACE,
                    min_quality: float = 0.0) -> list[Verification]:
    """1:1 against the claim ``name`` for an analysed image: its largest face (``all_faces``: each face) decided,
    or one "no face" decision; faces that cannot be judged (``decisions.unjudged``) are never "same"."""
    if not result.faces:
        return [Verification(result, None, None, threshold, claim=name, faces=0)]
    faces = result.faces if all_faces else result.faces[:1]
    d = claim_distances(gallery, faces, name, templates)
    return [Verification(result, f, float(x), threshold, claim=name, faces=len(result.faces),
                         unjudged=decisions.unjudged(f, min_face, min_quality)) for f, x in zip(faces, d)]


def nearest_templates(gallery: Gallery, face: Face, top_k: int = 10) -> list[Match]:
    """The ``top_k`` templates nearest to ``face``, whoever they belong to, nearest first (``facecli search``)."""
    head = _check_embedded(gallery, [face])
    probe = matching.face_vectors([face])
    templates = candidates(gallery, probe, head, "auto", max(64, top_k))
    d = matching.sq_distances(probe, templates.matrix)[0]
    top = np.argsort(d, kind="stable")[:top_k]
    ids = [int(templates.ids[i]) for i in top]
    info = gallery._sources_of(ids)
    return [Match(rank + 1, templates.names[templates.person_of_row[i]], float(d[i]), t, info[t]["source"])
            for rank, (i, t) in enumerate(zip(top, ids))]


def candidates(gallery: Gallery, vectors: np.ndarray, head: LoadedHead | None = None, search: str = "auto",
               count: int = 64, whole_persons: bool = False,
               log: Callable[[str], None] = lambda _m: None) -> TemplateMatrix:
    """The templates that probe ``vectors`` are scored against: every template, or above ``search.EXACT_MAX``
    (or with ``search`` "index") an index's ``count`` nearest (``whole_persons``: with all their person's
    templates). With a ``head``, every template through it: the index holds base-model embeddings, so a gallery
    used with a head is searched exactly ("index" is refused)."""
    check_head(gallery, head)
    if head is not None:
        if check_search(search) == "index":
            raise BadValue("search", search, "a gallery used with a projection head is searched exactly: its "
                                             "index holds the base model's embeddings")
        # computed once per head until the next write; mean templates are then the means of the head's outputs
        return gallery._cached(f"projected {head.sha256}", lambda: head.apply_templates(gallery._templates()))
    # one searcher per setting for the life of the open gallery (an index is loaded once)
    searcher = gallery._cached(f"searcher {search} {count} {whole_persons}",
                               lambda: Searcher(gallery, search, count, log, whole_persons))
    return searcher.templates_for(vectors)


def _check_embedded(gallery: Gallery, faces: list[Face]) -> LoadedHead | None:
    """Refuse faces of another embedding size, or through another head than the gallery's; their head."""
    dims = {None if f.embedding is None else len(f.embedding) for f in faces}
    if dims != {gallery.dim}:
        raise GalleryError(gallery.location, f"holds {gallery.dim}-d {gallery.model} templates; these faces are "
                                             f"embedded with {sorted(dims, key=str)}-d embeddings")
    head = faces[0].head
    if any((f.head is None) != (head is None) or (head is not None and f.head.sha256 != head.sha256)
           for f in faces):
        raise GalleryError(gallery.location, "these faces come through different projection heads")
    check_head(gallery, head)
    return head
