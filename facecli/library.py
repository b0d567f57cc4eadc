"""Your photo library: index its faces once, then find anyone, and name the faces nobody has named yet.

``index`` records every face of every photo in the gallery's photo index
(``gallery.photos``), incrementally: a file whose size and modification
time are unchanged costs a ``stat``; a file of a size some indexed file has
is hashed first, so a moved, renamed or copied photo is recognised by its
content and never embedded again; everything else goes through the engine's
streaming pipeline and is recorded a batch at a time (one transaction each:
a killed run leaves whole photos, and the next run does the rest).

``find`` answers from the index without decoding an image: a face is a
person's exactly when ``identify`` would name it so (the same decision,
``identification.decide``, on the same embeddings), so enrolling or removing
someone changes the answer at once. Every indexed face is first scored
against the person alone (one matrix-vector product over the cached face
matrix, ``facematrix``) and only the faces within tau of them are decided
against the whole gallery.

``cluster_unnamed`` puts each face nobody is named for into a cluster that
keeps its number across runs; ``name_cluster`` enrolls a cluster's person.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from facecli import decisions, matching
from facecli.clustering import cluster
from facecli.errors import BadValue, FaceCliError, InputError
from facecli.gallery import identification
from facecli.gallery.facematrix import FaceMatrix, face_matrix
from facecli.gallery.people import settle
from facecli.gallery.photos import FileRecord, IndexedFace, PhotoIndex
from facecli.imageio import read_bytes
from facecli.sources import sha256_bytes
from facecli.values import EnrollResult, Template

if TYPE_CHECKING:
    from facecli.engine import Engine
    from facecli.gallery.store import Gallery
    from facecli.heads import LoadedHead
    from facecli.values import ImageResult, Threshold

#: Photos recorded per transaction, at most; and at least every RECORD_SECONDS when they come slowly.
RECORD_BATCH = 32
RECORD_SECONDS = 2.0
#: Unnamed faces clustered together at once (average linkage is quadratic); clusters of different chunks
#: whose centres are within tau are joined.
CLUSTER_CHUNK = 2000
#: Distances computed at once when faces are matched against cluster centres (tens of MB, not gigabytes).
DISTANCE_BLOCK = 4_000_000
#: Templates a named cluster gives its person, at most (``choose_templates``).
NAME_TEMPLATES = 5


@dataclass
class IndexEvent:
    """What happened to one file: new, changed, redone (other detector settings), moved, copy, unchanged,
    error; and how many faces its photo has."""

    path: str
    status: str
    faces: int = 0
    error: FaceCliError | None = None


@dataclass
class IndexSummary:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("seen", "new", "changed", "redone", "moved", "copy", "unchanged", "error", "pruned", "faces"), 0))

    def add(self, event: IndexEvent) -> None:
        self.counts["seen"] += 1
        self.counts[event.status] += 1
        if event.status in ("new", "changed", "redone"):
            self.counts["faces"] += event.faces


def detector_settings(engine: Engine) -> str:
    """What found a photo's faces: a photo found with other settings is analysed again."""
    return f"{engine.pipeline.detector.name}@{engine.pipeline.det_size}"


def index(engine: Engine, gallery: Gallery, inputs: Iterable[str | FaceCliError], prune: bool = False,
          roots: Iterable[str] = (), summary: IndexSummary | None = None) -> Iterator[IndexEvent]:
    """Bring the photo index up to date with ``inputs`` (paths, or errors already found for an input): one
    event per file, as it is recorded. ``prune``: afterwards forget indexed files under ``roots`` (folders or
    files) that no longer exist."""
    gallery.bind(engine.model)
    summary = summary if summary is not None else IndexSummary()
    photos = PhotoIndex(gallery)
    settings = detector_settings(engine)
    known = photos.known_files()
    by_sha: dict[str, list[str]] = {}  # every indexed photo has a file: the index's photos, by content
    found_with: dict[str, str] = {}
    for k in known.values():
        by_sha.setdefault(k.sha256, []).append(k.path)
        found_with[k.sha256] = k.detector
    sizes = {k.size for k in known.values()}
    seen: set[str] = set()
    pending: list[FileRecord] = []
    waiting: list[IndexEvent] = []
    analyse: list[tuple[str, os.stat_result, str]] = []  # (path, stat, status) for the pipeline
    last = time.monotonic()

    def flush(force: bool = False) -> Iterator[IndexEvent]:
        nonlocal last
        if pending and (force or len(pending) >= RECORD_BATCH or time.monotonic() - last > RECORD_SECONDS):
            photos.record(pending)
            pending.clear()
            last = time.monotonic()
            yield from _told(waiting, summary)

    for item in inputs:
        if isinstance(item, FaceCliError):
            yield from _told([IndexEvent(item.subject, "error", error=item)], summary)
            continue
        path = os.path.abspath(item)
        seen.add(path)
        if not _recordable(path):
            yield from _told([IndexEvent(item, "error", error=InputError(
                ascii(item), "a file name that is not UTF-8 cannot be recorded: rename the file"))], summary)
            continue
        try:
            st = os.stat(path)
        except OSError as exc:
            yield from _told([IndexEvent(item, "error", error=InputError(item, exc.strerror or str(exc)))], summary)
            continue
        was = known.get(path)
        if was is not None and (was.size, was.mtime_ns, was.detector) == (st.st_size, st.st_mtime_ns, settings):
            yield from _told([IndexEvent(path, "unchanged")], summary)
            continue
        status = "new" if was is None else "changed"
        if st.st_size in sizes:  # it may be a photo the index holds already: known by its content
            try:
                sha = sha256_bytes(read_bytes(path))
            except FaceCliError as exc:
                yield from _told([IndexEvent(path, "error", error=exc)], summary)
                continue
            photo_settings = found_with.get(sha)
            if photo_settings == settings:
                gone = None if was is not None else \
                    next((p for p in by_sha.get(sha, []) if p != path and not os.path.exists(p)), None)
                event = "unchanged" if was is not None and was.sha256 == sha else \
                    "changed" if was is not None else "moved" if gone else "copy"
                pending.append(FileRecord(path, st.st_size, st.st_mtime_ns, sha, moved_from=gone))
                waiting.append(IndexEvent(path, event))
                if gone:
                    by_sha[sha].remove(gone)
                yield from flush()
                continue
            if photo_settings is not None:
                status = "redone"
        analyse.append((path, st, status))

    stats = {path: (st, status) for path, st, status in analyse}
    for result in engine.run(p for p, _, _ in analyse):
        st, status = stats[result.path]
        if result.error is not None:
            yield from _told([IndexEvent(result.path, "error", error=result.error)], summary)
            continue
        pending.append(_record(result, st, settings))
        waiting.append(IndexEvent(result.path, status, len(result.faces)))
        yield from flush()
    yield from flush(force=True)
    if prune:
        summary.counts["pruned"] += photos.prune(_gone(known, seen, [os.path.abspath(r) for r in roots]))


def _recordable(path: str) -> bool:
    """Whether a path can be stored as text (a name that is not UTF-8 reaches Python as surrogate escapes)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _told(events: list[IndexEvent], summary: IndexSummary) -> Iterator[IndexEvent]:
    """Hand out events (once what they report is recorded), counting them."""
    for event in events:
        summary.add(event)
        yield event
    events.clear()


def _record(result: ImageResult, st: os.stat_result, settings: str) -> FileRecord:
    faces = [IndexedFace(f.box, None if f.landmarks is None else np.round(f.landmarks, 2).tolist(),
                         f.detection.score, f.embedding) for f in result.faces]
    width, height = result.size or (0, 0)
    return FileRecord(result.path, st.st_size, st.st_mtime_ns, str(result.sha256), (width, height, settings), faces)


def _gone(known: dict, seen: set[str], roots: list[str]) -> list[str]:
    """Indexed paths under ``roots`` that this run did not see and that no longer exist; nothing under a root
    that is itself missing (an unmounted drive, a mistyped path)."""
    roots = [r for r in roots if os.path.exists(r)]  # an unmounted drive's photos are not gone

    def under(path: str) -> bool:
        return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)

    return [p for p in known if p not in seen and under(p) and not os.path.exists(p)]


# -- find ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Found:
    """One indexed face that ``identify`` names ``name``, with its photo and every path holding it."""

    name: str
    distance: float
    face_id: int
    face: dict[str, Any]  # PhotoIndex.faces: photo id, sha256, width, height, face number, box, landmarks, …
    paths: list[str]


def _vectors(gallery: Gallery, fm: FaceMatrix, head: LoadedHead | None) -> np.ndarray:
    """The indexed faces as they are compared: their embeddings, through the gallery's head when it has one."""
    identification.check_head(gallery, head)
    return fm.matrix if head is None else head.apply(fm.matrix)


def find(gallery: Gallery, names: list[str], threshold: Threshold | None = None, head: LoadedHead | None = None,
         templates: str = "mean", min_face: float = decisions.MIN_FACE, search: str = "auto",
         log: Callable[[str], None] = lambda _m: None) -> list[Found]:
    """The indexed faces ``identify`` names as one of ``names``, by name then path; no image is decoded."""
    matching.check_templates(templates)
    spelt = []
    for name in names:
        stored = gallery.person(name)
        if stored is None:
            raise BadValue("name", name, f"no such person in {gallery.location}")
        spelt.append(stored)
    threshold = threshold or identification.threshold(gallery, head=head)
    fm = face_matrix(gallery)
    if not len(fm.ids):
        return []
    vectors = _vectors(gallery, fm, head)
    near = np.zeros(len(fm.ids), dtype=bool)
    for name in spelt:
        stored = gallery.embeddings_of(name)
        refs = matching.person_references(stored if head is None else head.apply(stored), templates)
        # a margin over tau: the exact decision below is made on these faces alone
        near |= (vectors @ refs.T).max(axis=1) >= 1.0 - (threshold.tau + 1e-4) / 2
    near &= ~decisions.is_too_small_size(fm.sizes, min_face)
    rows = np.flatnonzero(near)
    if not len(rows):
        return []
    found = identification.decide(gallery, np.asarray(vectors[rows]), threshold, head, 1, templates, search, log)
    hits = [(d.name, float(d.distance), int(fm.ids[i])) for i, d in zip(rows, found) if d.name in spelt]
    photos = PhotoIndex(gallery)
    info = photos.faces([f for _, _, f in hits])
    paths = photos.paths({info[f]["photo_id"] for _, _, f in hits})
    out = [Found(name, d, f, info[f], paths.get(info[f]["photo_id"], [])) for name, d, f in hits]
    return sorted(out, key=lambda x: (spelt.index(x.name), x.paths, x.face["face"]))


# -- faces nobody has named ------------------------------------------------------------------
@dataclass(frozen=True)
class UnnamedCluster:
    """A cluster of faces nobody is named for: its number, its faces (face ids), the one nearest its centre."""

    cluster: int
    faces: list[int]
    sample: int


def cluster_unnamed(gallery: Gallery, head: LoadedHead | None = None, tau: float | None = None,
                    min_face: float = decisions.MIN_FACE, threshold: Threshold | None = None) -> list[UnnamedCluster]:
    """Cluster the indexed faces that ``identify`` names nobody for (and that are large enough to be named, and
    not ambiguous between enrolled people: those are someone enrolled, not someone new), largest cluster first.

    A face keeps the cluster it was put in before, so numbers are stable
    across runs. A face not clustered yet joins the cluster whose centre is
    nearest if within ``tau`` (default: the 1:1 tau, as ``facecli cluster``);
    the rest are clustered among themselves (average linkage, ``CLUSTER_CHUNK``
    at a time) and each new group joins a cluster within tau of its centre,
    or gets the next free number.
    """
    tau = decisions.verification_threshold(str(gallery.model), tau, head=head).tau
    fm = face_matrix(gallery)
    if not len(fm.ids):
        return []
    vectors = _vectors(gallery, fm, head)
    names, ambiguous = _names(gallery, vectors, head, threshold)
    named = np.array([n is not None for n in names], dtype=bool) | ambiguous
    unnamed = ~decisions.is_too_small_size(fm.sizes, min_face) & ~named
    rows = np.flatnonzero(unnamed)
    existing = PhotoIndex(gallery).clusters()
    label = np.array([existing.get(int(fm.ids[r]), -1) for r in rows], dtype=np.int64)
    vecs = np.asarray(vectors[rows], dtype=np.float32)
    centres = _centres(vecs, label)
    fresh = np.flatnonzero(label < 0)
    if len(fresh) and centres:
        ids = np.array(list(centres))
        best, nearest = _nearest_centres(vecs[fresh], np.stack([centres[i] for i in ids]))
        close = nearest <= tau
        label[fresh[close]] = ids[best[close]]
        fresh = fresh[~close]
    next_id = max([*existing.values(), 0]) + 1
    for start in range(0, len(fresh), CLUSTER_CHUNK):
        chunk = fresh[start:start + CLUSTER_CHUNK]
        groups = cluster(vecs[chunk], tau)
        group_centres = np.stack([_unit(vecs[chunk[groups == g]].mean(axis=0)) for g in range(groups.max() + 1)])
        ids = np.array(list(centres), dtype=np.int64)
        best, nearest = _nearest_centres(group_centres, np.stack([centres[i] for i in ids])) if len(ids) else \
            (None, np.full(len(group_centres), np.inf))
        for g, centre in enumerate(group_centres):
            members = chunk[groups == g]
            if nearest[g] <= tau:
                label[members] = ids[int(best[g])]
            else:
                label[members], centres[next_id] = next_id, centre
                next_id += 1
    PhotoIndex(gallery).set_clusters({int(fm.ids[rows[i]]): int(label[i]) for i in np.flatnonzero(label >= 0)
                                      if existing.get(int(fm.ids[rows[i]])) != int(label[i])})
    found = []
    for c in np.unique(label):
        members = np.flatnonzero(label == c)
        centre = _unit(vecs[members].mean(axis=0))
        sample = members[int(np.argmax(vecs[members] @ centre))]
        found.append(UnnamedCluster(int(c), [int(fm.ids[rows[m]]) for m in members], int(fm.ids[rows[sample]])))
    return sorted(found, key=lambda c: (-len(c.faces), c.cluster))


def _names(gallery: Gallery, vectors: np.ndarray, head: LoadedHead | None,
           threshold: Threshold | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The name ``identify`` gives each of these face vectors (None: nobody), as an object array, and which of
    them it calls ambiguous."""
    names = np.full(len(vectors), None, dtype=object)
    ambiguous = np.zeros(len(vectors), dtype=bool)
    if not gallery.person_count():
        return names, ambiguous
    threshold = threshold or identification.threshold(gallery, head=head)
    for start in range(0, len(vectors), 20_000):  # in parts: the distances of 20 000 faces to every person
        part = np.asarray(vectors[start:start + 20_000])
        found = identification.decide(gallery, part, threshold, head)
        names[start:start + len(part)] = [d.name for d in found]
        ambiguous[start:start + len(part)] = [d.ambiguous for d in found]
    return names, ambiguous


def people(gallery: Gallery, head: LoadedHead | None = None, min_face: float = decisions.MIN_FACE,
           threshold: Threshold | None = None) -> dict[str, tuple[int, int]]:
    """Each enrolled person -> how many indexed faces ``identify`` names them for, and in how many photos."""
    found = {p.name: (0, 0) for p in gallery.persons()}
    fm = face_matrix(gallery)
    if not len(fm.ids):
        return found
    names, _ = _names(gallery, _vectors(gallery, fm, head), head, threshold)
    names[decisions.is_too_small_size(fm.sizes, min_face)] = None
    for name in found:
        hit = names == name
        found[name] = (int(hit.sum()), len(np.unique(fm.photos[hit])))
    return found


def _nearest_centres(vecs: np.ndarray, centres: np.ndarray,
                     block: int = DISTANCE_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Each vector's nearest centre (index) and its squared distance, ``block`` distances at a time: a library
    of 80 000 new faces against 30 000 clusters would otherwise need a 9.6 GB matrix."""
    rows = max(1, block // max(1, len(centres)))
    best = np.empty(len(vecs), dtype=np.int64)
    nearest = np.empty(len(vecs), dtype=np.float64)
    for start in range(0, len(vecs), rows):
        d = matching.sq_distances(vecs[start:start + rows], centres)
        best[start:start + len(d)] = d.argmin(axis=1)
        nearest[start:start + len(d)] = d[np.arange(len(d)), best[start:start + len(d)]]
    return best, nearest


def _centres(vecs: np.ndarray, label: np.ndarray) -> dict[int, np.ndarray]:
    return {int(c): _unit(vecs[label == c].mean(axis=0)) for c in np.unique(label[label >= 0])}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def choose_templates(vectors: np.ndarray, count: int = NAME_TEMPLATES) -> list[int]:
    """Which faces of a cluster enroll its person: from the half nearest the cluster's centre (a face at its
    edge is the likeliest to be someone else's), the one nearest the centre, then each time the face farthest
    from those chosen (the person's range of poses, light and age, not five near-copies of one photo)."""
    centre = _unit(vectors.mean(axis=0))
    order = np.argsort(-(vectors @ centre), kind="stable")
    core = order[:max(1, (len(order) + 1) // 2)]
    chosen = [int(core[0])]
    while len(chosen) < min(count, len(core)):
        nearest = (vectors[core] @ vectors[chosen].T).max(axis=1)
        nearest[np.isin(core, chosen)] = np.inf  # never the same face twice, even among identical ones
        chosen.append(int(core[int(np.argmin(nearest))]))
    return chosen


def name_cluster(gallery: Gallery, number: int, name: str, head: LoadedHead | None = None,
                 tau: float | None = None, min_face: float = decisions.MIN_FACE) -> list[EnrollResult]:
    """Enroll the person of unnamed cluster ``number`` as ``name`` from up to ``NAME_TEMPLATES`` of its faces
    (``choose_templates``); per template, what the gallery did with it (as ``Engine.enroll`` says it)."""
    clusters = {c.cluster: c for c in cluster_unnamed(gallery, head, tau, min_face)}
    if number not in clusters:
        raise BadValue("cluster", number, "no such unnamed cluster (facecli people --unnamed lists them)")
    faces = clusters[number].faces
    fm = face_matrix(gallery)
    rows = np.searchsorted(fm.ids, faces)
    picked = [faces[i] for i in choose_templates(np.asarray(_vectors(gallery, fm, head)[rows]))]
    photos = PhotoIndex(gallery)
    info = photos.faces(picked)
    paths = photos.paths({info[f]["photo_id"] for f in picked})
    entries = []
    for f in picked:
        embedding = np.asarray(fm.matrix[rows[faces.index(f)]], dtype=np.float32)
        source = (paths.get(info[f]["photo_id"]) or [info[f]["sha256"]])[0]
        entries.append((source, Template(embedding, source, info[f]["sha256"], tuple(info[f]["box"]))))
    return [settle(EnrollResult(name, source, "pending", template=template), stored, source)
            for (source, template), stored in zip(entries, gallery.enroll([(name, t) for _, t in entries]))]
