"""One embedding per labelled image, as the evaluations measure it, cached by content and setting.

An image is represented by its central face (FaceNet's choice: the largest,
penalised by its distance from the centre), or by a centre crop when no face
is found (counted as a fallback). Each model's embeddings are cached on their
own per image sha256 and pipeline setting, and detections per detector
setting, so a re-run costs nothing and variants that share a detector share
its detections. With a projection head, the cached base embeddings are
mapped through it (the cache never holds a head's outputs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facecli.alignment import center_crop
from facecli.detectors import create_detector
from facecli.embedding import Embedder, FaceEmbedder
from facecli.errors import InputError
from facecli.imageio import decode, read_bytes
from facecli.models import DEFAULT_MODEL
from facecli.paths import cache_dir
from facecli.private import check_private, make_private_dir
from facecli.sources import sha256_bytes
from facecli.values import Detection

if TYPE_CHECKING:
    from facecli.heads import LoadedHead


def central_face(faces: Sequence[Detection], shape: tuple[int, ...]) -> Detection:
    """FaceNet's choice among several faces: the largest, penalised by its offset from the centre."""
    cy, cx = shape[0] / 2, shape[1] / 2

    def merit(f: Detection) -> float:
        ox = (f.box[0] + f.box[2]) / 2 - cx
        oy = (f.box[1] + f.box[3]) / 2 - cy
        return f.area - 2.0 * (ox * ox + oy * oy)

    return max(faces, key=merit)


class EmbeddingCache:
    """(setting, image sha256) -> embedding and whether the centre-crop fallback was used.

    Detections are cached on their own, keyed by the detector's setting, so
    variants that change only the margin or flip skip detection.
    """

    def __init__(self, path: Path | None = None) -> None:
        path = path or cache_dir() / "eval-embeddings.sqlite"
        make_private_dir(path.parent)
        # embeddings of the user's own photos (eval pairs): private from the first byte, like a gallery
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        check_private(path, "cache of embeddings", InputError)
        self._conn = sqlite3.connect(path, timeout=60, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS emb (setting TEXT, sha TEXT, vec BLOB, fallback INT, "
                           "PRIMARY KEY (setting, sha))")
        self._conn.execute("CREATE TABLE IF NOT EXISTS det (setting TEXT, sha TEXT, box TEXT, "
                           "PRIMARY KEY (setting, sha))")

    def get_box(self, setting: str, sha: str) -> tuple[bool, Detection | None]:
        """(cached?, the chosen face or None when the detector found none)."""
        row = self._conn.execute("SELECT box FROM det WHERE setting = ? AND sha = ?", (setting, sha)).fetchone()
        if row is None:
            return False, None
        saved = json.loads(row[0])
        if saved is None:
            return True, None
        if isinstance(saved, list):  # saved before landmarks were kept
            return True, Detection(tuple(saved), 1.0)
        points = saved.get("landmarks")
        return True, Detection(tuple(saved["box"]), 1.0, None if points is None else np.asarray(points))

    def put_box(self, setting: str, sha: str, det: Detection | None) -> None:
        saved = None if det is None else {
            "box": list(det.box), "landmarks": None if det.landmarks is None else np.asarray(det.landmarks).tolist()}
        self._conn.execute("INSERT OR REPLACE INTO det VALUES (?, ?, ?)", (setting, sha, json.dumps(saved)))

    def get(self, setting: str, sha: str) -> tuple[np.ndarray, bool] | None:
        row = self._conn.execute("SELECT vec, fallback FROM emb WHERE setting = ? AND sha = ?",
                                 (setting, sha)).fetchone()
        return None if row is None else (np.frombuffer(row[0], dtype="<f4"), bool(row[1]))

    def put_many(self, setting: str, rows: list[tuple[str, np.ndarray, bool]]) -> None:
        self._conn.execute("BEGIN")
        self._conn.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?, ?)",
                               [(setting, sha, np.asarray(v, "<f4").tobytes(), int(fb)) for sha, v, fb in rows])
        self._conn.execute("COMMIT")


def setting_key(setting: dict) -> str:
    return hashlib.sha256(json.dumps(setting, sort_keys=True).encode()).hexdigest()[:24]


def detector_setting(name: str, detector) -> dict:
    """The cache key of a detector's choices: its name and its numeric and text settings."""
    return {"detector": name,
            "detector_args": {k: v for k, v in vars(detector).items() if isinstance(v, (int, float, str, tuple))}}


def part_setting(part: Embedder, detector_setting: dict) -> dict:
    """The cache key of one model's embeddings: the model, its crop and the detector that placed it."""
    setting = {"model": part.spec.sha256, "margin": part.margin, "flip": part.flip, **detector_setting}
    if part.alignment != "box-margin":
        setting["alignment"] = part.alignment
    return setting


def embed_for_eval(paths: Sequence[str], detector, embedder: FaceEmbedder, detector_setting: dict,
                   on_image: Callable[[], None] = lambda: None,
                   cache: EmbeddingCache | None = None) -> tuple[dict[str, np.ndarray], int]:
    """One embedding per image (its central face, else a centre crop); returns them and the fallback count.

    Each model's embeddings are cached on their own, so a fusion reuses what
    its single models have computed, and detections are cached per detector.
    """
    cache = cache or EmbeddingCache()
    keys = [setting_key(part_setting(p, detector_setting)) for p in embedder.parts]
    det_key = setting_key(detector_setting)
    landmarks = embedder.needs_landmarks()
    found: list[dict[str, np.ndarray]] = [{} for _ in embedder.parts]
    fell_back: set[str] = set()
    todo: list[list[tuple[str, str, np.ndarray, bool]]] = [[] for _ in embedder.parts]  # path, sha, crop, fallback

    def flush(part: int) -> None:
        rows = todo[part]
        if not rows:
            return
        emb = embedder.parts[part].embed(np.stack([t[2] for t in rows]))
        cache.put_many(keys[part], [(sha, v, fb) for (_, sha, _, fb), v in zip(rows, emb)])
        for (p, _, _, _), v in zip(rows, emb):
            found[part][p] = v
        rows.clear()

    for p in paths:
        data = read_bytes(p)
        sha = sha256_bytes(data)
        image = face = None
        for i, part in enumerate(embedder.parts):
            hit = cache.get(keys[i], sha)
            if hit is not None:
                found[i][p] = hit[0]
                if hit[1]:
                    fell_back.add(p)
                continue
            if image is None:
                image = decode(data, p)
                cached, face = cache.get_box(det_key, sha)
                if not cached or (landmarks and face is not None and face.landmarks is None):
                    faces = detector.detect(image)
                    face = central_face(faces, image.shape) if faces else None
                    cache.put_box(det_key, sha, face)
            if face is not None:
                crop, fb = part.crop(image, face), False
            else:
                crop, fb = center_crop(image, part.size), True
                fell_back.add(p)
            todo[i].append((p, sha, crop, fb))
            if len(todo[i]) >= part.batch_size:
                flush(i)
        on_image()
    for i in range(len(embedder.parts)):
        flush(i)
    return {p: embedder.fuse([f[p] for f in found]) for p in paths}, len(fell_back)


class LabelledEmbedder:
    """A model, its detector and their settings (and a projection head), embedding labelled images for an
    evaluation."""

    def __init__(self, model: str = DEFAULT_MODEL, detector: str | None = None, device: str = "auto",
                 flip: bool | None = None, margin: float | None = None, head: LoadedHead | None = None) -> None:
        self.embedder = FaceEmbedder(model, device, flip=flip, margin=margin)
        if head is not None:
            head.check_model(model, self.embedder.dim)
        self.head = head
        self.detector_name = detector or self.embedder.spec.detector
        self.detector = create_detector(self.detector_name, device)
        self.setting = {"model": model, "detector": self.detector_name,
                        "flip": [p.name for p in self.embedder.parts if p.flip],
                        "margin": {p.name: p.margin for p in self.embedder.parts if p.alignment == "box-margin"}}
        if head is not None:
            self.setting["head"] = head.sha256

    @property
    def provider(self) -> str:
        """Where the embedder runs (loads the model, which a fully cached run never needs)."""
        return self.embedder.provider

    def embed(self, paths: Sequence[str], on_image: Callable[[], None] = lambda: None,
              cache: EmbeddingCache | None = None) -> tuple[dict[str, np.ndarray], int]:
        """Each image's embedding (through the head, with one), and how many images fell back to the centre crop."""
        emb, fallbacks = embed_for_eval(paths, self.detector, self.embedder,
                                        detector_setting(self.detector_name, self.detector), on_image, cache)
        if self.head is not None and emb:
            keys = list(emb)
            emb = dict(zip(keys, self.head.apply(np.stack([emb[k] for k in keys]))))
        return emb, fallbacks
