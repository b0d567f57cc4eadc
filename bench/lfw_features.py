"""Dump every LFW image's features as `facecli eval` computes them for a model (default: fusion).

One row per image, sorted by path: the central face (``evaluation.embeddings.central_face``) of the model's
detector, or the centre-crop fallback; each model's unit embedding on the crop its manifest asks for;
the fused embedding (``FaceEmbedder.fuse``); and what a quality-aware decision could use: the
detector's score, box, landmarks, how many faces it found, and the L2 norm of each model's raw
output before normalisation (for the crop and, with flip, its mirror). Research on the open set
(bench/openset_scores.py) then runs on this file in seconds instead of re-embedding for ~15 min.

    nice -n 10 python bench/lfw_features.py --lfw ../shared/lfw --out ~/.cache/facecli/lfw-features.npz
    python bench/lfw_features.py --check 300     # fused == what `facecli eval` computes, on 300 images

Arrays: path, person, <model> (N, dim) per component, fused (N, D), <model>_raw_norm and, with flip,
<model>_raw_norm_flip (N,), det_score, box (N, 4), landmarks (N, 5, 2), fallback, n_faces, image_hw (N, 2).
"""

from __future__ import annotations

import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import add_lfw, parser, resolve_lfw

from facecli.alignment import center_crop
from facecli.detectors import create_detector
from facecli.embedding import Embedder, FaceEmbedder
from facecli.evaluation import LabelledEmbedder
from facecli.evaluation.embeddings import EmbeddingCache, central_face
from facecli.imageio import decode, read_bytes
from facecli.inputs import is_image_name
from facecli.models import DEFAULT_MODEL
from facecli.paths import cache_dir


def list_images(root: Path) -> list[str]:
    """Paths relative to ``root``: ``<person>/<photo>``, sorted."""
    return sorted(str(f.relative_to(root)) for f in root.glob("*/*") if f.is_file() and is_image_name(f))


def analyse(root: Path, rel: str, detector, parts: list[Embedder]) -> dict:
    """Decode and detect one image, and make each model's crop, exactly as ``embed_for_eval`` does."""
    path = str(root / rel)
    image = decode(read_bytes(path), path)
    faces = detector.detect(image)
    face = central_face(faces, image.shape) if faces else None
    if face is None:
        crops = [center_crop(image, p.size) for p in parts]
        box, score, points = np.full(4, np.nan), np.nan, np.full((5, 2), np.nan)
    else:
        crops = [p.crop(image, face) for p in parts]
        box, score = np.asarray(face.box, dtype=np.float64), face.score
        points = np.full((5, 2), np.nan) if face.landmarks is None else np.asarray(face.landmarks, dtype=np.float64)
    return {"crops": crops, "box": box, "score": score, "landmarks": points, "fallback": face is None,
            "n_faces": len(faces), "hw": image.shape[:2]}


def dump(root: Path, model: str, out: Path, limit: int | None = None, workers: int = 2) -> dict[str, np.ndarray]:
    embedder = FaceEmbedder(model)
    detector = create_detector(embedder.spec.detector)
    paths = list_images(root)[:limit]
    batch = embedder.batch_size
    rows: dict[str, list] = {k: [] for k in ("box", "score", "landmarks", "fallback", "n_faces", "hw")}
    emb: list[list[np.ndarray]] = [[] for _ in embedder.parts]
    norms: list[list[np.ndarray]] = [[] for _ in embedder.parts]
    norms_flip: list[list[np.ndarray]] = [[] for _ in embedder.parts]
    start = time.time()
    with ThreadPoolExecutor(workers) as pool:  # detection on the workers, embedding here
        for lo in range(0, len(paths), batch):
            chunk = list(pool.map(lambda r: analyse(root, r, detector, embedder.parts), paths[lo:lo + batch]))
            for key in rows:
                rows[key] += [a["hw" if key == "hw" else key] for a in chunk]
            for i, part in enumerate(embedder.parts):
                unit, raw_norms = part.embed_with_norms(np.stack([a["crops"][i] for a in chunk]))
                emb[i].append(unit)
                norms[i].append(raw_norms[:, 0])
                if part.flip:
                    norms_flip[i].append(raw_norms[:, 1])
            done = lo + len(chunk)
            if done % (batch * 20) == 0 or done == len(paths):
                print(f"{done}/{len(paths)} images, {time.time() - start:.0f} s", file=sys.stderr, flush=True)
    parts = [np.concatenate(e) for e in emb]
    arrays: dict[str, np.ndarray] = {
        "path": np.array(paths), "person": np.array([p.split("/")[0] for p in paths]),
        "fused": embedder.fuse(parts).astype(np.float32),
        "det_score": np.array(rows["score"], dtype=np.float32), "box": np.array(rows["box"], dtype=np.float32),
        "landmarks": np.array(rows["landmarks"], dtype=np.float32), "fallback": np.array(rows["fallback"]),
        "n_faces": np.array(rows["n_faces"], dtype=np.int32), "image_hw": np.array(rows["hw"], dtype=np.int32),
    }
    for i, part in enumerate(embedder.parts):
        arrays[part.name] = parts[i].astype(np.float32)
        arrays[f"{part.name}_raw_norm"] = np.concatenate(norms[i]).astype(np.float32)
        if norms_flip[i]:
            arrays[f"{part.name}_raw_norm_flip"] = np.concatenate(norms_flip[i]).astype(np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, model=np.array(model), **arrays)
    return arrays


def check(root: Path, dumped: Path, n: int, seed: int = 0) -> float:
    """Max |fused - embed_for_eval's| over ``n`` random images of the dump (a fresh cache: nothing reused)."""
    data = np.load(dumped)
    model = str(data["model"])
    pick = np.sort(np.random.default_rng(seed).choice(len(data["path"]), min(n, len(data["path"])), replace=False))
    rels = [str(data["path"][i]) for i in pick]
    with tempfile.TemporaryDirectory() as tmp:
        emb, fallbacks = LabelledEmbedder(model).embed([str(root / r) for r in rels],
                                                       cache=EmbeddingCache(Path(tmp) / "c.sqlite"))
    ref = np.stack([emb[str(root / r)] for r in rels])
    diff = float(np.abs(ref - data["fused"][pick]).max())
    print(f"{len(rels)} images: max |fused - embed_for_eval| = {diff:.2e}; fallbacks {fallbacks} "
          f"(dump: {int(data['fallback'][pick].sum())})")
    return diff


def main() -> None:
    ap = parser(__doc__)
    add_lfw(ap, images=True)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out", type=Path, default=cache_dir() / "lfw-features.npz")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images (a quick try)")
    ap.add_argument("--check", type=int, default=0, metavar="N",
                    help="do not dump: compare N images of --out with what `facecli eval` computes")
    args = resolve_lfw(ap.parse_args())
    if args.check:
        sys.exit(0 if check(args.images, args.out, args.check) < 1e-5 else 1)
    arrays = dump(args.images, args.model, args.out, args.limit)
    print(f"wrote {args.out}: {len(arrays['path'])} images, {int(arrays['fallback'].sum())} without a face")


if __name__ == "__main__":
    main()
