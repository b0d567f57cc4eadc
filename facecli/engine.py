"""The Python API: an engine (detector + embedder, loaded once) and one method per task.

    import facecli

    engine = facecli.load()                        # model and device as in the CLI
    faces = engine.faces("door.jpg")               # or a HxWx3 uint8 BGR array (OpenCV's order)
    faces = engine.faces(pixels, rgb=True)         # an RGB array (PIL's, face_recognition's)
    v = engine.verify("a.jpg", "b.jpg")            # v.distance, v.tau, v.same; a Face for either side too
    facecli.distance(faces[0], v.probe_face)       # what verify compares against tau
    with facecli.open_gallery() as gallery:        # the CLI's gallery; or a path, postgresql://..., ":memory:"
        for d in engine.identify_faces(gallery, faces):   # d.name (None: not recognized), d.distance, d.tau
            ...
        for result, found in engine.identify(gallery, ["a.jpg", "b.jpg"]):   # a stream: one image at a time
            ...
        for frame in engine.watch(gallery, "door.mp4"):   # a video, a camera index or a stream URL
            for event in frame.events:             # appear, update, leave: one person's appearance
                ...

    tuned = facecli.load(head="head.onnx")         # a projection head from `facecli tune`
    for_it = facecli.load(gallery=gallery)         # the gallery's model, and the head it keeps (if any)

A head is part of the engine like its models: every face it embeds keeps
the base model's embedding (what a gallery stores) and names the head it is
matched through (``Face.head``), so distances, thresholds and galleries all
use the head's space, and a gallery used with another head (or none) refuses
the faces. A gallery set to use a head keeps it (``load(gallery=...)``).

One image (``faces``, ``analyse``) is handled on the calling thread, as a
camera loop wants; ``run`` streams many, several at a time. Arrays are
uint8 in BGR order unless ``rgb`` says RGB, per call or for the engine
(``load(rgb=True)``); what cannot be an 8-bit image (a float array, a PIL
image) is refused with an ``InputError`` naming it.

The CLI is built on these methods: it parses arguments, calls them and
renders what they return. Errors that the caller can act on are
``FaceCliError``s; a bad image in a stream is returned in its
``ImageResult.error`` so that the rest of the stream goes on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from facecli import decisions, door, library, matching
from facecli.choosing import Chosen, choose_faces
from facecli.clustering import cluster
from facecli.detectors import DET_SIZE
from facecli.errors import BadValue, FaceCliError, InputError
from facecli.gallery import Gallery, identification
from facecli.gallery.people import enroll_clusters, settle
from facecli.gallery.settings import head_in_use
from facecli.heads import LoadedHead, load_head
from facecli.models import pipeline_spec
from facecli.names import person_name
from facecli.pipeline import Pipeline
from facecli.tracking import Tracker
from facecli.values import (
    ClusteredFace,
    Decision,
    EnrollResult,
    Face,
    HeadRecord,
    ImageResult,
    Match,
    Template,
    Threshold,
    Verification,
    stored_source,
)
from facecli.video import Video, open_video, same_person_tau
from facecli.watching import watch_frames

if TYPE_CHECKING:
    from facecli.door import DoorEvent, LiveCheck
    from facecli.library import Found, IndexEvent
    from facecli.video import Frame, Video

Image = str | os.PathLike | np.ndarray  # a path, or decoded pixels: BGR, or RGB where ``rgb`` says


def load(model: str | None = None, device: str = "auto", detector: str | None = None, flip: bool | None = None,
         det_size: int = DET_SIZE, embed: bool = True, head: str | os.PathLike | LoadedHead | None = None,
         rgb: bool = False, gallery: Gallery | None = None) -> Engine:
    """An engine for ``model`` (default: the ``gallery``'s, else fusion, or with a head, the head's base model) on
    ``device`` (auto: the GPU when there is one).

    ``detector`` defaults to the model's own; ``flip`` to where the manifest
    measured the mirror image to help; ``embed=False`` loads only the detector.
    ``head``: a projection head file from ``facecli tune`` (checked by its
    sha256 sidecar: ``heads.load_head``), or one loaded already. ``rgb``: arrays
    given to the engine are in RGB order unless a call says otherwise (the
    default is BGR, OpenCV's order). ``gallery``: an engine for matching
    against it, with its model and the head it keeps (``head`` defaults to it;
    the gallery refuses another).
    """
    if head is not None and not isinstance(head, LoadedHead):
        head = load_head(head)
    if gallery is not None:
        head = head_in_use(gallery, head)
    model = decisions.choose_model(model, gallery.model if gallery is not None else None, head)
    if head is not None:
        head.check_model(model, pipeline_spec(model).dim)
    return Engine(Pipeline(detector, model, device, flip, embed=embed, det_size=det_size, head=head, rgb=rgb))


def _source(image: Image | FaceCliError) -> str | np.ndarray | FaceCliError:
    """What the pipeline reads: pixels or a path; an error (an input already found bad) passes through, and
    anything else becomes the error that says what to give instead."""
    if isinstance(image, (np.ndarray, FaceCliError)):
        return image
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    kind = type(image)
    name = f"<{kind.__module__}.{kind.__qualname__}>"
    if kind.__module__.startswith("PIL."):
        return InputError(name, "a PIL image: give np.asarray(image) with rgb=True, or its file's path")
    return InputError(name, "not an image: give a path, or an HxWx3 uint8 array (BGR, or RGB with rgb=True)")


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
    def run(self, images: Iterable[Image | FaceCliError], rgb: bool | None = None) -> Iterator[ImageResult]:
        """Every image's faces, embedded, in input order; a bad image carries its error instead.

        ``images`` may be a slow stream (paths arriving on a pipe): each result
        comes out as soon as it is ready, without waiting for the next input,
        and several images are handled at once. An input given as a
        ``FaceCliError`` comes back as that error's result. ``rgb``: the arrays
        are in RGB order (None: the engine's order, BGR unless loaded with ``rgb=True``).
        """
        return self.pipeline.run((_source(i) for i in images), rgb)

    def analyse(self, image: Image, rgb: bool | None = None) -> ImageResult:
        """One image's result (its faces embedded, or the error that stopped it), handled on this thread: the
        same as ``run`` gives for it, without starting the threads a stream needs."""
        return self.pipeline.one(_source(image), rgb)

    def faces(self, image: Image, rgb: bool | None = None) -> list[Face]:
        """The faces of one image (a path, or an array: BGR, or RGB with ``rgb``), largest first, each with its
        box, landmarks and unit embedding; an image that cannot be read raises its ``FaceCliError``.

        Handled on this thread, as ``analyse``: a camera loop calling it for every frame pays nothing per call
        for threads, nor for the sha256 of the pixels (``analyse`` gives that).
        """
        result = self.pipeline.one(_source(image), rgb, digest=False)
        if result.error:
            raise result.error
        return result.faces

    # -- 1:1 --------------------------------------------------------------------------
    def verify(self, a: Image | Face, b: Image | Face, tau: float | None = None, all_faces: bool = False,
               force: bool = False, rgb: bool | None = None) -> Verification:
        """Is the (largest) face of ``a`` the same person as that of ``b``? (``all_faces``: the closest pair;
        ``force``: accept a tau of 2 or more, ``decisions.check_tau``; ``rgb``: arrays in RGB order.)

        Either side may be a ``Face`` this engine's model embedded (``faces``): it is compared as it is, so a
        face found once is not detected and embedded again for every comparison.
        """
        threshold = decisions.verification_threshold(self.model, tau, force, self.head)
        if isinstance(a, Face) or isinstance(b, Face):
            ra, rb = (self._given(x) if isinstance(x, Face) else self.analyse(x, rgb) for x in (a, b))
        else:
            ra, rb = self.run([a, b], rgb)  # two images: side by side
        fa, fb = _faces_of(ra, all_faces), _faces_of(rb, all_faces)
        i, j, d = matching.closest_pair(matching.face_vectors(fa), matching.face_vectors(fb))
        return Verification(ra, fa[i], d, threshold, rb, fb[j])

    def _given(self, face: Face) -> ImageResult:
        """A face given to compare, as the result of an image holding only it; refused unless this engine could
        have embedded it (its model's size, through the same head or none), or its distances would mean nothing
        against this engine's tau."""
        if face.embedding is None:
            raise InputError("<face>", "has no embedding (found by an engine loaded with embed=False)")
        if face.embedding.shape != (self.dim,):
            raise InputError("<face>", f"its embedding has shape {face.embedding.shape}; model {self.model} "
                                       f"embeds {self.dim}-d")
        if (face.head and face.head.sha256) != (self.head and self.head.sha256):
            given = f"with the head {face.head.label}" if face.head else "without a head"
            mine = f"the head {self.head.label}" if self.head else "none"
            raise InputError("<face>", f"embedded {given}; this engine uses {mine}")
        return ImageResult("<face>", [face])

    def verify_claim(self, gallery: Gallery, image: Image, name: str, tau: float | None = None,
                     all_faces: bool = False, templates: str = "mean", force: bool = False,
                     min_face: float = decisions.MIN_FACE, min_quality: float | None = None) -> Verification:
        """Is the largest face of ``image`` the enrolled person ``name``? (``all_faces``: the face nearest to them.)
        A photo with no face is a Verification with decision "no face"; a face under ``min_face`` pixels, or of a
        quality under ``min_quality`` (default: the model's), one that cannot be judged."""
        (v,) = self.verify_claims(gallery, [image], name, tau, all_faces, templates, force, min_face, min_quality)
        if isinstance(v, FaceCliError):
            raise v
        return v[0] if not all_faces else min(v, key=lambda x: (x.distance is None, x.distance or 0.0))

    def verify_claims(self, gallery: Gallery, images: Iterable[Image | FaceCliError], name: str,
                      tau: float | None = None, all_faces: bool = False, templates: str = "mean",
                      force: bool = False, min_face: float = decisions.MIN_FACE, min_quality: float | None = None,
                      ) -> Iterator[list[Verification] | FaceCliError]:
        """For each image of a stream, in input order: the decision on its largest face (with ``all_faces``, one
        per face; none found: one "no face" decision), or the error (unreadable) that kept it from one, so that
        the rest goes on."""
        stored, threshold = self._claim(gallery, name, tau, force, templates)
        floor = self.min_quality(min_quality)
        for result in self.run(images):
            if result.error:
                yield result.error
                continue
            yield identification.claim_decisions(gallery, result, stored, threshold, all_faces, templates, min_face,
                                                 floor)

    def _claim(self, gallery: Gallery, name: str, tau: float | None, force: bool,
               templates: str) -> tuple[str, Threshold]:
        """Before any image work on a claim: the settings checked, the gallery bound, the person's stored name and
        the 1:1 threshold."""
        matching.check_templates(templates)
        threshold = decisions.verification_threshold(self.model, tau, force, self.head)
        self._use(gallery)
        stored = gallery.person(name)
        if stored is None:
            raise BadValue("claim", name, f"no such person in {gallery.location}")
        return stored, threshold

    # -- enrollment -------------------------------------------------------------------
    def enroll(self, gallery: Gallery, items: list[tuple[str, Image]], largest: bool = False,
               min_face: float = decisions.MIN_FACE, on_image: Callable[[], None] = lambda: None,
               ) -> list[EnrollResult]:
        """Embed every (name, photo), then write all good templates in one transaction.

        A photo without a face, with several unless ``largest``, with a face
        smaller than ``min_face`` pixels (identify would never name it), whose
        face is already enrolled as someone else, or of which that person has
        another face, is reported and skipped. A face too poor to identify
        (``min_quality``) is enrolled, marked ``too_poor``: it may be the only
        photo there is, but it makes a poor template. The gallery
        is checked before any work (its model, and the head it is used with);
        a new one (``open_gallery(..., create=True)``) is created only when
        there is something to write, and with this engine's head it records
        that head. Templates are the base model's embeddings, whatever the head.
        """
        for name in {n for n, _ in items}:
            person_name(name)
        record = self._head_to_record(gallery)
        floor = self.min_quality()
        results: list[EnrollResult] = []
        for name, res, chosen in self.enroll_faces(items, largest, min_face, on_image, gallery):
            if isinstance(chosen, FaceCliError):
                results.append(EnrollResult(name, res.path, "error", chosen))
                continue
            face = chosen.face
            template = Template(face.embedding, stored_source(res.path), res.sha256, face.box)
            results.append(EnrollResult(name, res.path, "pending", template=template, chosen=chosen,
                                        quality=face.quality, too_poor=decisions.is_too_poor(face.quality, floor)))
        good = [r for r in results if r.template is not None]
        if not good:
            return results
        for r, stored in zip(good, gallery.enroll([(r.name, r.template) for r in good], record)):
            settle(r, stored, r.path)
        return results

    def enroll_faces(self, items: list[tuple[str, Image]], largest: bool = False,
                     min_face: float = decisions.MIN_FACE, on_image: Callable[[], None] = lambda: None,
                     gallery: Gallery | None = None) -> list[tuple[str, ImageResult, Chosen | FaceCliError]]:
        """Each (name, photo) in input order with its photo's result and the face it contributes, chosen as
        ``facecli.choosing`` says (a photo with several faces: the one that agrees with the person's other photos,
        and their templates in ``gallery``), or the error saying why it contributes none: what enroll and tune
        both take."""
        analysed = []
        for (name, _), result in zip(items, self.run(p for _, p in items)):
            on_image()
            for face in result.faces:
                face.crops = ()  # only the embedding is kept: a tuning set may hold thousands of photos
            analysed.append((name, result))
        tau = decisions.verification_threshold(self.model).tau  # base embeddings, whatever the head
        enrolled = gallery.embeddings_of if gallery is not None else None  # it resolves the name as stored
        chosen = choose_faces(analysed, tau, largest, min_face, enrolled)
        return [(name, result, c) for (name, result), c in zip(analysed, chosen)]

    # -- 1:N --------------------------------------------------------------------------
    def identify(self, gallery: Gallery, images: Iterable[Image], threshold: Threshold | None = None,
                 top_k: int = 1, search: str = "auto", min_face: float = decisions.MIN_FACE,
                 templates: str = "mean", log: Callable[[str], None] = lambda _m: None,
                 min_quality: float | None = None) -> Iterator[tuple[ImageResult, list[Decision]]]:
        """1:K for every face of every image: (result, one decision per face), in input order.

        ``threshold`` defaults to the gallery's (``identification.threshold``:
        FPIR-calibrated for its size); faces whose quality is under
        ``min_quality`` (None: the model's, ``Engine.min_quality``) are never
        named. The faces of each group the pipeline
        embeds together are decided together, in one matrix product against
        the gallery, and handed out at once: on a slow stream, an image's
        decisions do not wait for the next image.
        """
        matching.check_templates(templates)
        decisions.check_top_k(top_k)
        self._use(gallery)  # before any image work
        threshold = threshold or identification.threshold(gallery, head=self.head)
        quality = self.min_quality(min_quality)
        for batch in self.pipeline.batches(_source(i) for i in images):
            faces = [f for r in batch for f in r.faces]
            found = identification.identify(gallery, faces, threshold, top_k, templates, min_face, search, log,
                                            quality)
            start = 0
            for r in batch:
                yield r, found[start:start + len(r.faces)]
                start += len(r.faces)

    def identify_faces(self, gallery: Gallery, faces: list[Face], threshold: Threshold | None = None,
                       top_k: int = 1, search: str = "auto", min_face: float = decisions.MIN_FACE,
                       templates: str = "mean", min_quality: float | None = None) -> list[Decision]:
        """1:K for faces this engine embedded already (``faces``): one decision per face, in order."""
        matching.check_templates(templates)
        decisions.check_top_k(top_k)
        self._use(gallery)
        threshold = threshold or identification.threshold(gallery, head=self.head)
        return identification.identify(gallery, faces, threshold, top_k, templates, min_face, search,
                                       min_quality=self.min_quality(min_quality))

    def min_quality(self, requested: float | None = None) -> float:
        """The quality under which this engine's faces are never named (``decisions.min_quality``): ``requested``
        (0: no such rule), else its model's. A face under it (``decisions.is_too_poor``) is no basis for any
        decision: identify and watch say "too poor to identify"."""
        return decisions.min_quality(self.model, requested)

    def threshold(self, gallery: Gallery, tau: float | None = None, fpir: float | None = None,
                  force: bool = False, min_gap: float | None = None) -> Threshold:
        """The 1:N threshold ``identify`` uses against ``gallery``: ``tau`` by hand, else the one whose expected
        share of strangers named is ``fpir`` (else the gallery's, else 1 %) at its size; and its ``min_gap``
        (else the model's)."""
        self._use(gallery)
        return identification.threshold(gallery, tau, fpir, force, self.head, min_gap)

    def search(self, gallery: Gallery, image: Image, top_k: int = 10) -> tuple[Face, list[Match]]:
        """The ``top_k`` templates nearest to the largest face of ``image``, across all persons."""
        decisions.check_top_k(top_k)
        self._use(gallery)  # before any image work
        (face,) = _faces_of(self.analyse(image), all_faces=False)
        return face, identification.nearest_templates(gallery, face, top_k)

    def search_each(self, gallery: Gallery, images: Iterable[Image | FaceCliError], top_k: int = 10,
                    ) -> Iterator[tuple[ImageResult, list[Match] | FaceCliError]]:
        """``search`` for each image of a stream, in input order: its result and the matches of its largest face,
        or the error (unreadable, no face) that kept it from any, so that the rest goes on."""
        decisions.check_top_k(top_k)
        self._use(gallery)
        for result in self.run(images):
            try:
                (face,) = _faces_of(result, all_faces=False)
            except FaceCliError as exc:
                yield result, exc
                continue
            yield result, identification.nearest_templates(gallery, face, top_k)

    # -- the photo library ------------------------------------------------------------------
    def index(self, gallery: Gallery, paths: Iterable[str | os.PathLike], prune: bool = False) -> Iterator[IndexEvent]:
        """Bring ``gallery``'s photo index up to date with these photo files (``library.index``): one event per
        file (new, changed, redone, moved, copy, unchanged, error); ``prune``: afterwards forget indexed files
        among ``paths`` that no longer exist."""
        names = [os.fspath(p) for p in paths]
        return library.index(self, gallery, names, prune, names)

    def find(self, gallery: Gallery, names: list[str], threshold: Threshold | None = None,
             min_face: float = decisions.MIN_FACE, templates: str = "mean") -> list[Found]:
        """The indexed faces ``identify`` names as one of ``names`` (through this engine's head), from the index
        alone (``library.find``)."""
        self._use(gallery)
        return library.find(gallery, names, threshold, self.head, templates, min_face)

    # -- video ----------------------------------------------------------------------------
    def watch(self, gallery: Gallery, source: str | int | Video, threshold: Threshold | None = None,
              step: int = 1, max_gap: float = 1.0, min_face: float = decisions.MIN_FACE,
              stop: threading.Event | None = None, min_quality: float | None = None,
              liveness: Callable[[], LiveCheck] | None = None) -> Iterator[Frame]:
        """Identify the faces of every ``step``-th frame of a video and follow them as tracks, until the video
        ends or ``stop`` is set: one ``Frame`` per analysed frame, with the ``events`` it brought (appear,
        update, leave).

        ``source`` is a video file, a stream URL, a camera index (``facecli.video.Video``: reconnection, a
        real-time reader for live sources), or a ``Video`` opened already; it is closed at the end. Faces
        join tracks by motion and by embedding (``facecli.tracking``); with ``liveness`` (making a
        ``door.LiveCheck``) each track is checked for liveness on its faces, and an update says when that
        changes. A stream lost for good still ends with the final frame (every track leaves), then raises
        ``StreamLost``.
        """
        self._use(gallery)  # before any frame is read
        threshold = threshold or identification.threshold(gallery, head=self.head)
        quality = self.min_quality(min_quality)
        video = source if isinstance(source, Video) else open_video(source)
        tracker = Tracker(decisions.verification_threshold(self.model).tau, same_person_tau(self.model), max_gap,
                          liveness=liveness)
        yield from watch_frames(self.pipeline, gallery, video, threshold, tracker, step, min_face, quality, stop)

    def verify_at_door(self, gallery: Gallery, source: str | int | Video, name: str, timeout: float = 10.0,
                       tau: float | None = None, step: int = 1, embed_every: int = 1, templates: str = "mean",
                       min_face: float = decisions.MIN_FACE, liveness: Callable[[], LiveCheck] | None = None,
                       force: bool = False,
                       stop: threading.Event | None = None, min_quality: float | None = None) -> Iterator[DoorEvent]:
        """``verify_claim`` on a video, a camera or a stream: watch it until the face at the door is confirmed as
        ``name`` (``facecli.door``), ``timeout`` seconds pass, or it ends; each change of the answer, then the
        final ``DoorEvent`` ("confirmed", "timeout" or "ended"). ``liveness`` makes a ``door.LiveCheck`` for each
        new door face (``facecli.liveness.face.live_faces``)."""
        stored, threshold = self._claim(gallery, name, tau, force, templates)
        floor = self.min_quality(min_quality)
        video = source if isinstance(source, Video) else open_video(source)
        try:
            yield from door.watch_claim(self.pipeline, gallery, video, stored, threshold, timeout, step, embed_every,
                                        templates, min_face, floor, liveness, stop)
        finally:
            video.close()

    def _head_to_record(self, gallery: Gallery) -> HeadRecord | None:
        """Before enrolling into ``gallery``: bind its model and check its head, or, for an empty gallery used with
        no head yet, the head its first enroll records (this engine's)."""
        gallery.bind(self.model)
        if self.head is not None and gallery.head() is None and not gallery.person_count():
            return self.head.record
        identification.check_head(gallery, self.head)
        return None

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

    def enroll_clusters(self, gallery: Gallery, clustered: list[ClusteredFace],
                        min_face: float = decisions.MIN_FACE) -> list[EnrollResult]:
        """Enroll each cluster as a new person ``unknown-N`` (one transaction): per clustered face, in order, the
        person its cluster became and whether the face is in the gallery under that name (``added``,
        ``present``), or the error saying why not.

        A face under ``min_face`` pixels is not enrolled (identify would never
        name it), nor one already enrolled as someone else, nor a second face
        of a photo in one cluster (a person has one face per photo); a cluster
        with no face to enroll is given no name.
        """
        return enroll_clusters(gallery, clustered, min_face, lambda: self._head_to_record(gallery))

