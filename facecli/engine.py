"""The Python API: an engine (detector + embedder, loaded once) and one method per task.

    import facecli

    engine = facecli.load()                        # model and device as in the CLI
    faces = engine.faces("door.jpg")               # or a HxWx3 uint8 BGR array (OpenCV's order)
    v = engine.verify("a.jpg", "b.jpg")            # v.distance, v.tau, v.same
    with facecli.open_gallery("gallery.db") as gallery:
        for d in gallery.identify(faces):          # d.name (None: not recognized), d.distance, d.tau
            ...

    tuned = facecli.load(head="head.onnx")         # a projection head from `facecli tune`

A head is part of the engine like its models: every face it embeds keeps
the base model's embedding (what a gallery stores) and names the head it is
matched through (``Face.head``), so distances, thresholds and galleries all
use the head's space, and a gallery used with another head (or none) refuses
the faces.

The CLI is built on these methods: it parses arguments, calls them and
renders what they return. Errors that the caller can act on are
``FaceCliError``s; a bad image in a stream is returned in its
``ImageResult.error`` so that the rest of the stream goes on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from facecli import decisions, matching
from facecli.detectors import DET_SIZE
from facecli.errors import BadValue, FaceCliError, FaceTooSmall, InputError, SeveralFaces
from facecli.gallery import Gallery, identification
from facecli.heads import LoadedHead
from facecli.inputs import check_person_name
from facecli.models import DEFAULT_MODEL, pipeline_spec
from facecli.pipeline import Pipeline
from facecli.values import (
    ClusteredFace,
    Decision,
    EnrollResult,
    Face,
    ImageResult,
    Match,
    Template,
    Threshold,
    Verification,
)

Image = str | os.PathLike | np.ndarray  # a path, or decoded pixels in BGR order


def load(model: str | None = None, device: str = "auto", detector: str | None = None, flip: bool | None = None,
         det_size: int = DET_SIZE, embed: bool = True, head: str | os.PathLike | LoadedHead | None = None) -> Engine:
    """An engine for ``model`` (default: fusion, or with a head, the head's base model) on ``device`` (auto: the
    GPU when there is one).

    ``detector`` defaults to the model's own; ``flip`` to where the manifest
    measured the mirror image to help; ``embed=False`` loads only the detector.
    ``head``: a projection head file from ``facecli tune`` (checked by its
    sha256 sidecar: ``heads.load_head``), or one loaded already.
    """
    if head is not None and not isinstance(head, LoadedHead):
        from facecli.heads import load_head

        head = load_head(head)
    model = model or (head.base_model if head is not None else DEFAULT_MODEL)
    if head is not None:
        head.check_model(model, pipeline_spec(model).dim)
    return Engine(Pipeline(detector, model, device, flip, embed=embed, det_size=det_size, head=head))


def _source(image: Image | FaceCliError) -> str | np.ndarray | FaceCliError:
    """What the pipeline reads: pixels or a path; an error (an input already found bad) passes through."""
    return image if isinstance(image, (np.ndarray, FaceCliError)) else os.fspath(image)


def _faces_of(result: ImageResult, all_faces: bool = True) -> list[Face]:
    """The faces of a result (all, or the largest), or the error that says why there are none."""
    if result.error:
        raise result.error
    if not result.faces:
        raise InputError(result.path, "no face found")
    return result.faces if all_faces else result.faces[:1]


class Engine:
    """A detector, an embedder and optionally a projection head, with their settings; create it once, use it for
    many images."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    @property
    def model(self) -> str:
        return self.pipeline.embedder.name

    @property
    def dim(self) -> int:
        """The base model's embedding size (what ``Face.embedding`` and a gallery hold)."""
        return self.pipeline.embedder.dim

    @property
    def head(self) -> LoadedHead | None:
        """The projection head faces are matched through (``facecli tune``), or None."""
        return self.pipeline.head

    @property
    def vector_dim(self) -> int:
        """The size of what faces are compared by: the head's output, else the embedding."""
        return self.head.out_dim if self.head is not None else self.dim

    @property
    def provider(self) -> str:
        """Where the heaviest network runs: cpu, cuda or tensorrt."""
        return self.pipeline.provider

    # -- images -> faces ----------------------------------------------------------
    def run(self, images: Iterable[Image | FaceCliError]) -> Iterator[ImageResult]:
        """Every image's faces, embedded, in input order; a bad image carries its error instead.

        ``images`` may be a slow stream (paths arriving on a pipe): each result
        comes out as soon as it is ready, without waiting for the next input.
        An input given as a ``FaceCliError`` comes back as that error's result.
        """
        return self.pipeline.run(_source(i) for i in images)

    def analyse(self, image: Image) -> ImageResult:
        (result,) = self.run([image])
        return result

    def faces(self, image: Image) -> list[Face]:
        """The faces of one image, largest first, each with its box, landmarks and unit embedding."""
        result = self.analyse(image)
        if result.error:
            raise result.error
        return result.faces

    # -- 1:1 --------------------------------------------------------------------------
    def verify(self, a: Image, b: Image, tau: float | None = None, all_faces: bool = False,
               force: bool = False) -> Verification:
        """Is the (largest) face of ``a`` the same person as that of ``b``? (``all_faces``: the closest pair;
        ``force``: accept a tau of 2 or more, ``decisions.check_tau``.)"""
        threshold = decisions.verification_threshold(self.model, tau, force, self.head)
        ra, rb = self.run([a, b])
        fa, fb = _faces_of(ra, all_faces), _faces_of(rb, all_faces)
        i, j, d = matching.closest_pair(matching.face_vectors(fa), matching.face_vectors(fb))
        return Verification(ra, fa[i], d, threshold, rb, fb[j])

    def verify_claim(self, gallery: Gallery, image: Image, name: str, tau: float | None = None,
                     all_faces: bool = False, templates: str = "mean", force: bool = False) -> Verification:
        """Is the (largest) face of ``image`` the enrolled person ``name``?"""
        (v,) = self.verify_claims(gallery, [image], name, tau, all_faces, templates, force)
        if isinstance(v, FaceCliError):
            raise v
        return v

    def verify_claims(self, gallery: Gallery, images: Iterable[Image | FaceCliError], name: str,
                      tau: float | None = None, all_faces: bool = False, templates: str = "mean",
                      force: bool = False) -> Iterator[Verification | FaceCliError]:
        """``verify_claim`` for each image of a stream, in input order: its Verification, or the error
        (unreadable, no face) that kept it from one, so that the rest goes on."""
        matching.check_templates(templates)
        threshold = decisions.verification_threshold(self.model, tau, force, self.head)
        self._use(gallery)  # before any image work
        if not gallery.has_person(name):
            raise BadValue("claim", name, f"no such person in {gallery.location}")
        for result in self.run(images):
            try:
                faces = _faces_of(result, all_faces)
            except FaceCliError as exc:
                yield exc
                continue
            i, d = identification.distance_to(gallery, faces, name, templates)
            yield Verification(result, faces[i], d, threshold, claim=name)

    # -- enrollment -------------------------------------------------------------------
    def enroll(self, gallery: Gallery, items: list[tuple[str, Image]], largest: bool = False,
               min_face: float = decisions.MIN_FACE, on_image: Callable[[], None] = lambda: None,
               ) -> list[EnrollResult]:
        """Embed every (name, photo), then write all good templates in one transaction.

        A photo without a face, with several unless ``largest``, with a face
        smaller than ``min_face`` pixels (identify would never name it), or
        already enrolled as someone else, is reported and skipped. The gallery
        is checked before any work (its model, and the head it is used with);
        a new one (``open_gallery(..., create=True)``) is created only when
        there is something to write, and with this engine's head it records
        that head. Templates are the base model's embeddings, whatever the head.
        """
        for name in {n for n, _ in items}:
            check_person_name(name)
        gallery.bind(self.model)
        adopt_head = self.head is not None and gallery.head() is None and not gallery.person_count()
        if not adopt_head:
            identification.check_head(gallery, self.head)
        results: list[EnrollResult] = []
        for name, res, face in self.enroll_faces(items, largest, min_face, on_image):
            if isinstance(face, FaceCliError):
                results.append(EnrollResult(name, res.path, "error", face))
                continue
            template = Template(face.embedding, res.path, res.sha256, face.detection.box)
            results.append(EnrollResult(name, res.path, "pending", template=template))
        good = [r for r in results if r.template is not None]
        if not good:
            return results
        if adopt_head:
            gallery.set_head(self.head.record)
        for r, stored in zip(good, gallery.enroll([(r.name, r.template) for r in good])):
            r.status = stored.status if stored.status != "taken" else "error"
            if stored.holder is not None:
                r.error = InputError(r.path, f"this photo is already enrolled as {stored.holder}")
        return results

    def enroll_faces(self, items: list[tuple[str, Image]], largest: bool = False,
                     min_face: float = decisions.MIN_FACE, on_image: Callable[[], None] = lambda: None,
                     ) -> Iterator[tuple[str, ImageResult, Face | FaceCliError]]:
        """Each (name, photo) in input order with its photo's result and the one face it contributes
        (``enroll_face``), or the error saying why it contributes none: what enroll and tune both take."""
        names = iter([n for n, _ in items])
        for result in self.run(p for _, p in items):
            on_image()
            try:
                face: Face | FaceCliError = self.enroll_face(result, largest, min_face)
            except FaceCliError as exc:
                face = exc
            yield next(names), result, face

    @staticmethod
    def enroll_face(result: ImageResult, largest: bool = False, min_face: float = decisions.MIN_FACE) -> Face:
        """The one face a photo contributes (to a gallery, or to a tuning set), or an InputError saying why there
        is none: no face, several unless ``largest``, or one under ``min_face`` pixels."""
        faces = _faces_of(result)
        if len(faces) > 1 and not largest:
            raise SeveralFaces(result.path, len(faces))
        face = faces[0]  # faces come largest first
        if decisions.is_too_small(face.detection, min_face):
            raise FaceTooSmall(result.path, face.detection.width, face.detection.height, min_face)
        return face

    # -- 1:N --------------------------------------------------------------------------
    def identify(self, gallery: Gallery, images: Iterable[Image], threshold: Threshold | None = None,
                 top_k: int = 1, search: str = "auto", min_face: float = decisions.MIN_FACE,
                 templates: str = "mean", log: Callable[[str], None] = lambda _m: None,
                 ) -> Iterator[tuple[ImageResult, list[Decision]]]:
        """1:K for every face of every image: (result, one decision per face), in input order.

        ``threshold`` defaults to the gallery's (``identification.threshold``:
        FPIR-calibrated for its size). The faces of each group the pipeline
        embeds together are decided together, in one matrix product against
        the gallery, and handed out at once: on a slow stream, an image's
        decisions do not wait for the next image.
        """
        matching.check_templates(templates)
        self._use(gallery)  # before any image work
        threshold = threshold or identification.threshold(gallery, head=self.head)
        for batch in self.pipeline.batches(_source(i) for i in images):
            faces = [f for r in batch for f in r.faces]
            found = identification.identify(gallery, faces, threshold, top_k, templates, min_face, search, log)
            start = 0
            for r in batch:
                yield r, found[start:start + len(r.faces)]
                start += len(r.faces)

    def identify_faces(self, gallery: Gallery, faces: list[Face], threshold: Threshold | None = None,
                       top_k: int = 1, search: str = "auto", min_face: float = decisions.MIN_FACE,
                       templates: str = "mean") -> list[Decision]:
        """1:K for faces this engine embedded already (``faces``): one decision per face, in order."""
        matching.check_templates(templates)
        self._use(gallery)
        threshold = threshold or identification.threshold(gallery, head=self.head)
        return identification.identify(gallery, faces, threshold, top_k, templates, min_face, search)

    def threshold(self, gallery: Gallery, tau: float | None = None, fpir: float | None = None,
                  force: bool = False) -> Threshold:
        """The 1:N threshold ``identify`` uses against ``gallery``: ``tau`` by hand, else the one whose expected
        share of strangers named is ``fpir`` (else the gallery's, else 1 %) at its size."""
        self._use(gallery)
        return identification.threshold(gallery, tau, fpir, force, self.head)

    def search(self, gallery: Gallery, image: Image, top_k: int = 10) -> tuple[Face, list[Match]]:
        """The ``top_k`` templates nearest to the largest face of ``image``, across all persons."""
        self._use(gallery)  # before any image work
        (face,) = _faces_of(self.analyse(image), all_faces=False)
        probe = matching.face_vectors([face])
        templates = identification.candidates(gallery, probe, self.head, "auto", max(64, top_k))
        d = matching.sq_distances(probe, templates.matrix)[0]
        top = np.argsort(d, kind="stable")[:top_k]
        ids = [int(templates.ids[i]) for i in top]
        info = gallery._sources_of(ids)
        return face, [Match(rank + 1, templates.names[templates.person_of_row[i]], float(d[i]), t, info[t]["source"])
                      for rank, (i, t) in enumerate(zip(top, ids))]

    def _use(self, gallery: Gallery) -> None:
        """Refuse a gallery of another model, or used with another head than this engine's."""
        gallery.bind(self.model)
        identification.check_head(gallery, self.head)

    # -- clustering -------------------------------------------------------------------
    def cluster(self, images: Iterable[Image], tau: float | None = None, linkage: str = "average",
                on_image: Callable[[], None] = lambda: None, force: bool = False,
                ) -> tuple[list[ImageResult], list[ClusteredFace], Threshold]:
        """Every face of every image labelled with a cluster (0 = the largest), at the 1:1 threshold (through the
        head, with one)."""
        from facecli.clustering import cluster

        threshold = decisions.verification_threshold(self.model, tau, force, self.head)
        results = []
        for res in self.run(images):
            on_image()
            for f in res.faces:
                f.crops = ()  # the crops are no longer needed: keep memory at one embedding per face
            results.append(res)
        faces = [(r, f) for r in results for f in r.faces]
        labels = cluster(matching.face_vectors([f for _, f in faces]) if faces else np.empty((0, self.vector_dim)),
                         threshold.tau, linkage)
        return results, [ClusteredFace(r, f, int(k)) for (r, f), k in zip(faces, labels)], threshold

    def enroll_clusters(self, gallery: Gallery, clustered: list[ClusteredFace]) -> dict[int, str]:
        """Enroll each cluster as a new person ``unknown-N`` (one transaction); cluster -> name."""
        if not clustered:
            return {}
        gallery.bind(self.model)
        if self.head is not None and gallery.head() is None and not gallery.person_count():
            gallery.set_head(self.head.record)
        identification.check_head(gallery, self.head)
        ids = sorted({c.cluster for c in clustered})
        names = dict(zip(ids, gallery.new_names("unknown-", len(ids))))
        gallery.enroll([(names[c.cluster], Template(c.face.embedding, c.result.path, c.result.sha256,
                                                    c.face.detection.box)) for c in clustered])
        return names
