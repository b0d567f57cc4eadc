"""One function per task: what enroll, verify and identify do, without printing.

The CLI parses arguments, calls these and prints what they return; the
vision lives in the pipeline, the storage in the gallery.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from facecli import matching
from facecli.errors import FaceCliError, InputError
from facecli.gallery import Gallery, Template
from facecli.pipeline import Face, ImageResult, Pipeline
from facecli.search import Searcher

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


# -- enroll -------------------------------------------------------------------
def person_from_filename(path: Path) -> str:
    """``alice.jpg``, ``alice_2.jpg`` and ``alice-03.png`` all belong to ``alice``."""
    return re.sub(r"[_-]\d+$", "", path.stem) or path.stem


def scan_people_dir(root: Path) -> list[tuple[str, str]]:
    """(name, path) pairs from a folder of per-person sub-folders or of named files."""
    if not root.is_dir():
        raise InputError(str(root), "not a directory")
    pairs = []
    for entry in sorted(root.iterdir()):
        if entry.is_dir():
            pairs += [(entry.name, str(p)) for p in sorted(entry.iterdir())
                      if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            pairs.append((person_from_filename(entry), str(entry)))
    if not pairs:
        raise InputError(str(root), "no images found (expected person folders or person-named files)")
    return pairs


@dataclass
class EnrollResult:
    name: str
    path: str
    status: str  # "added", "present" or "error"
    error: FaceCliError | None = None
    template: Template | None = None


def choose_enroll_face(result: ImageResult, largest: bool) -> Face:
    """The one face a photo contributes, or an InputError saying why there is none."""
    if result.error:
        raise result.error
    if not result.faces:
        raise InputError(result.path, "no face found")
    if len(result.faces) > 1 and not largest:
        raise InputError(result.path, f"{len(result.faces)} faces found; use --largest to enroll the largest")
    return result.faces[0]  # faces come largest first


def enroll(pipeline: Pipeline, gallery_path: Path, items: list[tuple[str, str]], largest: bool = False,
           on_image: Callable[[], None] = lambda: None) -> list[EnrollResult]:
    """Embed every photo, then write all good templates in one transaction.

    A bad photo is reported and skipped. An existing gallery is checked
    before any work; a new one is created only when there is something to write.
    """
    model, dim = pipeline.embedder.name, pipeline.embedder.dim
    existing = Gallery.open(gallery_path, model, dim) if gallery_path.exists() else None
    results: list[EnrollResult] = []
    names = iter([n for n, _ in items])
    for res in pipeline.run([p for _, p in items]):
        on_image()
        name = next(names)
        try:
            face = choose_enroll_face(res, largest)
        except FaceCliError as exc:
            results.append(EnrollResult(name, res.path, "error", exc))
            continue
        template = Template(face.embedding, res.path, res.sha256, face.detection.box)
        results.append(EnrollResult(name, res.path, "pending", template=template))
    good = [r for r in results if r.template is not None]
    if not good:
        if existing:
            existing.close()
        return results
    with existing or Gallery.open(gallery_path, model, dim, create=True) as gallery:
        for r, added in zip(good, gallery.enroll([(r.name, r.template) for r in good])):
            r.status = "added" if added else "present"
    return results


# -- verify -------------------------------------------------------------------
@dataclass
class Verification:
    """A 1:1 decision between a probe photo and a reference (photo or person)."""

    probe: ImageResult
    probe_face: Face
    distance: float
    tau: float
    reference: ImageResult | None = None  # for photo-vs-photo
    reference_face: Face | None = None

    @property
    def same(self) -> bool:
        return self.distance <= self.tau


def _faces_for_verify(result: ImageResult, all_faces: bool) -> list[Face]:
    if result.error:
        raise result.error
    if not result.faces:
        raise InputError(result.path, "no face found")
    return result.faces if all_faces else result.faces[:1]


def _closest(probe: list[Face], reference: np.ndarray) -> tuple[int, int, float]:
    d = matching.sq_distances(np.stack([f.embedding for f in probe]), reference)
    i, j = np.unravel_index(int(np.argmin(d)), d.shape)
    return int(i), int(j), float(d[i, j])


def verify_photos(pipeline: Pipeline, a: str, b: str, tau: float, all_faces: bool = False) -> Verification:
    """Is the (largest) face of photo ``a`` the same person as that of ``b``?"""
    ra, rb = list(pipeline.run([a, b]))
    fa, fb = _faces_for_verify(ra, all_faces), _faces_for_verify(rb, all_faces)
    i, j, d = _closest(fa, np.stack([f.embedding for f in fb]))
    return Verification(ra, fa[i], d, tau, rb, fb[j])


def verify_claim(pipeline: Pipeline, gallery: Gallery, photo: str, name: str, tau: float,
                 all_faces: bool = False, templates: str = "mean") -> Verification:
    """Is the (largest) face of ``photo`` the enrolled person ``name``?"""
    matching.check_templates(templates)
    if not gallery.has_person(name):
        raise InputError(f"--claim {name}", f"no such person in {gallery.path}")
    templates_of = gallery.embeddings_of(name)
    reference = matching.mean_templates(templates_of) if templates == "mean" else templates_of
    (res,) = pipeline.run([photo])
    faces = _faces_for_verify(res, all_faces)
    i, _, d = _closest(faces, reference)
    return Verification(res, faces[i], d, tau)


# -- identify -----------------------------------------------------------------
def _too_small(faces: list[Face], decisions: list[matching.Decision], min_face: float) -> list[matching.Decision]:
    """Faces narrower or shorter than ``min_face`` pixels are not named (bench/ACCURACY.md, "Small faces")."""
    return [replace(d, name=None, too_small=True) if min(f.detection.width, f.detection.height) < min_face else d
            for f, d in zip(faces, decisions)]


def identify(pipeline: Pipeline, gallery: Gallery, paths: Iterable[str], tau: float, top_k: int = 1,
             batch_faces: int = 64, search: str = "auto", log: Callable[[str], None] = lambda _m: None,
             min_face: float = 0, templates: str = "mean") -> Iterator[tuple[ImageResult, list[matching.Decision]]]:
    """1:K: for every face of every image, the nearest person within tau or nobody.

    Faces of consecutive images are scored together, ``batch_faces`` at a
    time, in one matrix product against the gallery's templates (all of
    them, or the index's candidates for a large gallery: see ``search``).
    A face whose box is narrower or shorter than ``min_face`` pixels is
    never named: it keeps its nearest candidate but is marked too small.
    """
    matching.check_templates(templates)
    searcher = Searcher(gallery, search, candidates=max(64, 8 * top_k), log=log, whole_persons=templates == "mean")
    pending: list[ImageResult] = []

    def flush() -> Iterator[tuple[ImageResult, list[matching.Decision]]]:
        faces = [f for r in pending for f in r.faces]
        if faces:
            vectors = np.stack([f.embedding for f in faces])
            decisions = _too_small(faces, matching.identify(vectors, searcher.templates_for(vectors), tau, top_k,
                                                            templates), min_face)
        else:
            decisions = []
        start = 0
        for r in pending:
            yield r, decisions[start:start + len(r.faces)]
            start += len(r.faces)
        pending.clear()

    n_faces = 0
    for res in pipeline.run(paths):
        pending.append(res)
        n_faces += len(res.faces)
        if n_faces >= batch_faces:
            yield from flush()
            n_faces = 0
    yield from flush()


# -- cluster ------------------------------------------------------------------
def image_files(paths: Iterable[str]) -> list[str]:
    """The paths, with each directory replaced by the image files under it (sorted)."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out += [str(f) for f in sorted(path.rglob("*")) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
        else:
            out.append(p)
    return out


@dataclass
class ClusteredFace:
    result: ImageResult
    face: Face
    cluster: int


def cluster_faces(pipeline: Pipeline, paths: Iterable[str], tau: float, linkage: str = "average",
                  on_image: Callable[[], None] = lambda: None) -> tuple[list[ImageResult], list[ClusteredFace]]:
    """Every face of every image, labelled with a cluster (0 = the largest); no gallery involved."""
    from facecli.clustering import LINKAGES, cluster

    if linkage not in LINKAGES:
        raise FaceCliError(f"--linkage {linkage}", f"choose from {', '.join(LINKAGES)}")
    results = []
    for res in pipeline.run(paths):
        on_image()
        for f in res.faces:
            f.crops = ()  # the crops are no longer needed: keep memory at one embedding per face
        results.append(res)
    faces = [(r, f) for r in results for f in r.faces]
    labels = cluster(np.stack([f.embedding for _, f in faces]), tau, linkage) if faces else []
    return results, [ClusteredFace(r, f, int(k)) for (r, f), k in zip(faces, labels)]


def link_clusters(folder: Path, clustered: list[ClusteredFace], order: dict[str, int]) -> list[Path]:
    """One sub-folder per cluster with a symbolic link per face; names are made here, so never outside ``folder``."""
    from facecli.annotate import safe_name

    links = []
    for c in clustered:
        sub = folder / f"cluster-{c.cluster:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        link = sub / safe_name(order[c.result.path], c.result.path, f"-face{c.face.index}",
                               Path(c.result.path).suffix)
        link.unlink(missing_ok=True)
        link.symlink_to(Path(c.result.path).resolve())
        links.append(link)
    return links


def enroll_clusters(gallery_path: Path, model: str, dim: int, clustered: list[ClusteredFace]) -> dict[int, str]:
    """Enroll each cluster as a new person ``unknown-N`` (one transaction); cluster -> name."""
    if not clustered:
        return {}
    with Gallery.open(gallery_path, model, dim, create=True) as gallery:
        ids = sorted({c.cluster for c in clustered})
        names = dict(zip(ids, gallery.unused_names("unknown-", len(ids))))
        gallery.enroll([(names[c.cluster], Template(c.face.embedding, c.result.path, c.result.sha256,
                                                    c.face.detection.box)) for c in clustered])
    return names


# -- search -------------------------------------------------------------------
@dataclass
class Match:
    rank: int
    name: str
    distance: float
    template: int
    source: str


def search_templates(pipeline: Pipeline, gallery: Gallery, photo: str, top_k: int = 10) -> tuple[Face, list[Match]]:
    """The ``top_k`` templates nearest to the largest face of ``photo``, across all persons."""
    (res,) = pipeline.run([photo])
    (face,) = _faces_for_verify(res, all_faces=False)
    probe = face.embedding[None]
    templates = Searcher(gallery, "auto", candidates=max(64, top_k)).templates_for(probe)
    d = matching.sq_distances(probe, templates.matrix)[0]
    top = np.argsort(d, kind="stable")[:top_k]
    info = gallery.sources_of([int(templates.ids[i]) for i in top])
    return face, [Match(rank + 1, templates.names[templates.person_of_row[i]], float(d[i]), int(templates.ids[i]),
                        info[int(templates.ids[i])]["source"]) for rank, i in enumerate(top)]


# -- watch --------------------------------------------------------------------
@dataclass
class Frame:
    index: int
    time: float  # seconds from the start of the video (or of the capture)
    image: np.ndarray  # RGB
    faces: list[Face]
    decisions: list[matching.Decision]
    events: list  # tracking.Event


def open_video(source: str | int) -> tuple[object, float]:
    """An opened cv2.VideoCapture and its frame rate, or an InputError naming the source."""
    import cv2

    if isinstance(source, str) and not Path(source).is_file():
        raise InputError(source, "no such video file")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our own error says what failed
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise InputError(f"camera {source}" if isinstance(source, int) else source,
                         "cannot open it as a video (unsupported format, or no such camera)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    return capture, fps if fps and 0 < fps < 1000 else 30.0


def watch(pipeline: Pipeline, gallery: Gallery, capture: object, video_fps: float, tau: float, step: int,
          max_gap: float = 1.0, live: bool = False, min_face: float = 0) -> Iterator[Frame]:
    """Identify the faces of every ``step``-th frame and follow them; stops at the end of the video.

    ``live`` (a camera) times frames by the wall clock instead of the frame count.
    """
    import time as clock

    import cv2

    from facecli.tracking import Tracker

    searcher = Searcher(gallery, whole_persons=True)  # mean templates need all of a candidate's
    tracker = Tracker(max_gap=max_gap)
    start = clock.monotonic()
    index = -1
    try:
        while capture.grab():
            index += 1
            if index % step:
                continue
            ok, bgr = capture.retrieve()
            if not ok:
                break
            now = clock.monotonic() - start if live else index / video_fps
            image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            faces = pipeline.frame(image)
            decisions = []
            if faces:
                vectors = np.stack([f.embedding for f in faces])
                decisions = _too_small(faces, matching.identify(vectors, searcher.templates_for(vectors), tau),
                                       min_face)
            events = tracker.update(now, [(f.detection, d) for f, d in zip(faces, decisions)])
            yield Frame(index, now, image, faces, decisions, events)
    finally:
        capture.release()
    yield Frame(index, index / video_fps if not live else clock.monotonic() - start,
                np.empty((0, 0, 3), np.uint8), [], [], tracker.finish())
