"""Photo library benchmark: index LFW photos once, re-index, rename, find at 10k and 100k faces, and find's
precision and recall on LFW people enrolled one-shot.

All in one run on one machine, so the figures compare: ``facecli index`` over N LFW photos (photos per
second) against embedding the same photos with ``facecli identify`` and against face_recognition's CLI
(``make bench`` installs it in its own venv); a second ``index`` over the unchanged folder; one after renaming
1,000 of the files (both must embed nothing); ``find`` over the real index grown to 10,000 and 100,000 faces
with perturbed copies of its real embeddings (median of in-process calls, and of the whole command); and
``find``'s precision and recall per photo against LFW's names, every other person with two or more photos
enrolled from one photo, the rest strangers. Writes bench/results/library.json.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    FACECLI,
    add_lfw,
    lfw_subset,
    parser,
    resolve_lfw,
    table,
    timed_command,
    write_results,
)

ANCHOR = Path.home() / ".cache" / "facecli" / "bench-venv" / "bin" / "face_recognition"


def statuses(stdout: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in stdout.splitlines():
        status = json.loads(line)["status"]
        counts[status] = counts.get(status, 0) + 1
    return counts


def grow(gallery: str, target: int, rng: np.random.Generator) -> None:
    """Add perturbed copies of the index's real faces (distance about 0.3 to their original: more photos of the
    same people) until it holds ``target`` faces."""
    from facecli.gallery import open_gallery
    from facecli.gallery.facematrix import face_matrix
    from facecli.gallery.photos import FileRecord, IndexedFace, PhotoIndex

    with open_gallery(gallery, write=True) as g:
        fm = face_matrix(g)
        index = PhotoIndex(g)
        n = index.counts()["faces"]
        batch: list[FileRecord] = []
        k = 0
        while n < target:
            i = int(rng.integers(len(fm.ids)))
            v = np.asarray(fm.matrix[i]) + rng.normal(0, 0.3 / np.sqrt(fm.matrix.shape[1] * 2), fm.matrix.shape[1])
            face = IndexedFace((0.0, 0.0, 100.0, 100.0), None, 0.99, (v / np.linalg.norm(v)).astype(np.float32))
            batch.append(FileRecord(f"/synthetic/{target}/{k}.jpg", 1, 1, f"synthetic-{target}-{k}",
                                    (250, 250, "synthetic"), [face]))
            k += 1
            n += 1
            if len(batch) == 2000:
                index.record(batch)
                batch.clear()
        index.record(batch)


def find_times(gallery: str, name: str, rounds: int) -> tuple[float, float, int]:
    """Median seconds of opening the gallery and finding ``name`` in-process (after a first call that brings the
    face cache up to date), of the whole ``facecli find`` command, and how many faces it found."""
    from facecli.gallery import open_gallery
    from facecli.library import find

    def once() -> int:
        with open_gallery(gallery) as g:
            return len(find(g, [name]))

    found = once()
    inproc = []
    for _ in range(rounds):
        start = time.perf_counter()
        once()
        inproc.append(time.perf_counter() - start)
    env = {**os.environ, "FACECLI_GALLERY": gallery}
    cli = [timed_command([FACECLI, "find", name, "--json", "--quiet"], env=env)[0] for _ in range(max(5, rounds // 2))]
    return statistics.median(inproc), statistics.median(cli), found


def main() -> None:
    ap = parser(__doc__)
    add_lfw(ap)
    ap.add_argument("--count", type=int, default=5000, help="LFW photos indexed")
    ap.add_argument("--renamed", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--anchor", type=Path, default=ANCHOR, help="face_recognition's CLI")
    args = resolve_lfw(ap.parse_args())
    photos = sorted(lfw_subset(args.lfw, 10**6, required=True))[: args.count]  # whole folders: people repeat
    work = Path(tempfile.mkdtemp(prefix="facecli-library-bench-"))
    out: dict = {"photos": len(photos)}
    try:
        lib = work / "library"
        for p in photos:  # copies: renaming them must not touch the LFW folder
            target = lib / Path(p).parent.name / Path(p).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, target)
        gallery = str(work / "gallery.db")
        env = {**os.environ, "FACECLI_GALLERY": gallery}
        cores = os.cpu_count()

        first, proc = timed_command([FACECLI, "index", str(lib), "--json", "--quiet"], env=env)
        out["index_first"] = {"seconds": first, "per_s": len(photos) / first, "statuses": statuses(proc.stdout)}
        again, proc = timed_command([FACECLI, "index", str(lib), "--json", "--quiet"], env=env)
        out["index_unchanged"] = {"seconds": again, "statuses": statuses(proc.stdout)}
        files = sorted(lib.glob("*/*.jpg"))[: args.renamed]
        for f in files:
            f.rename(f.with_name("renamed-" + f.name))
        moved, proc = timed_command([FACECLI, "index", str(lib), "--json", "--quiet"], env=env)
        out["index_renamed"] = {"seconds": moved, "renamed": len(files), "statuses": statuses(proc.stdout)}

        # identify embeds the same photos against a one-person gallery
        known = work / "known"
        known.mkdir()
        shutil.copyfile(photos[0], known / "someone.jpg")
        enroll_env = {**os.environ, "FACECLI_GALLERY": str(work / "identify.db")}
        timed_command([FACECLI, "enroll", "someone", str(known / "someone.jpg"), "--quiet"], env=enroll_env)
        ident, _ = timed_command([FACECLI, "identify", str(lib), "--json", "--quiet"], env=enroll_env)
        out["identify"] = {"seconds": ident, "per_s": len(photos) / ident}
        if args.anchor.exists():  # its CLI reads one folder, not sub-folders: the same photos, linked flat
            flat = work / "flat"
            flat.mkdir()
            for f in sorted(lib.glob("*/*.jpg")):
                (flat / f.name).symlink_to(f)
            fr, proc = timed_command([str(args.anchor), "--cpus", str(cores), str(known), str(flat)])
            if len(proc.stdout.splitlines()) < len(photos):
                sys.exit(f"face_recognition answered for {len(proc.stdout.splitlines())} of {len(photos)} photos")
            out["face_recognition"] = {"seconds": fr, "per_s": len(photos) / fr}

        out["find_quality"] = quality(gallery, lib)
        name = out["find_quality"]["example"]
        rng = np.random.default_rng(0)
        out["find"] = {}
        for target in (10_000, 100_000):
            grow(gallery, target, rng)
            inproc, cli, found = find_times(gallery, name, args.rounds)
            out["find"][target] = {"in_process_s": inproc, "command_s": cli, "found": found}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(out)
    write_results("library.json", out)


def quality(gallery: str, lib: Path) -> dict:
    """Every other LFW person with two or more indexed photos enrolled from their first photo; per person,
    ``find``'s photos (the enrolled one left out) against the photos LFW names them in."""
    from facecli.gallery import open_gallery
    from facecli.gallery.facematrix import face_matrix
    from facecli.gallery.photos import PhotoIndex
    from facecli.library import find
    from facecli.values import Template

    by_person: dict[str, list[Path]] = {}
    for f in sorted(lib.glob("*/*.jpg")):
        by_person.setdefault(f.parent.name, []).append(f)
    repeated = sorted(p for p, fs in by_person.items() if len(fs) >= 2)
    enrolled = repeated[::2]
    with open_gallery(gallery, write=True) as g:
        index = PhotoIndex(g)
        fm = face_matrix(g)
        entries = []
        for person in enrolled:
            first = str(by_person[person][0].resolve())
            photo_id, sha = index.photos_of_paths([first])[first][:2]
            faces = index.faces(index.faces_of_photos([photo_id]).get(photo_id, []))
            if not faces:
                continue
            face_id = min(faces, key=lambda f: faces[f]["face"])  # the largest face: LFW's person
            row = int(np.searchsorted(fm.ids, face_id))
            entries.append((person, Template(np.asarray(fm.matrix[row]), first, sha, tuple(faces[face_id]["box"]))))
        g.enroll(entries)
        names = [p for p, _ in entries]
        start = time.perf_counter()
        found = find(g, names)
        seconds = time.perf_counter() - start
    predicted: dict[str, set[str]] = {n: set() for n in names}
    for f in found:
        predicted[f.name] |= {Path(p).parent.name + "/" + Path(p).name for p in f.paths}
    tp = fp = fn = 0
    for person in names:
        truth = {f"{person}/{f.name}" for f in by_person[person][1:]}
        got = predicted[person] - {f"{person}/{by_person[person][0].name}"}
        tp += len(got & truth)
        fp += len(got - truth)
        fn += len(truth - got)
    strangers = sum(len(fs) for p, fs in by_person.items() if p not in set(names))
    return {"enrolled": len(names), "photos": sum(len(fs) for fs in by_person.values()),
            "strangers_photos": strangers, "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
            "true_positives": tp, "false_positives": fp, "false_negatives": fn, "find_all_s": seconds,
            "example": max(names, key=lambda n: len(by_person[n]))}


def report(out: dict) -> None:
    n = out["photos"]
    rows = [["facecli index (first run)", f"{out['index_first']['seconds']:.1f}", f"{out['index_first']['per_s']:.1f}",
             json.dumps(out["index_first"]["statuses"])],
            ["facecli identify (same photos)", f"{out['identify']['seconds']:.1f}", f"{out['identify']['per_s']:.1f}",
             ""]]
    if "face_recognition" in out:
        rows.append(["face_recognition known/ library/", f"{out['face_recognition']['seconds']:.1f}",
                     f"{out['face_recognition']['per_s']:.1f}", ""])
    rows += [["facecli index (unchanged)", f"{out['index_unchanged']['seconds']:.2f}", "",
              json.dumps(out["index_unchanged"]["statuses"])],
             [f"facecli index ({out['index_renamed']['renamed']} renamed)", f"{out['index_renamed']['seconds']:.2f}",
              "", json.dumps(out["index_renamed"]["statuses"])]]
    table(f"Indexing {n} LFW photos", ["run", "seconds", "photos/s", "files"], rows)
    table("find one person", ["indexed faces", "in-process p50 (ms)", "whole command p50 (ms)", "faces found"],
          [[k, f"{v['in_process_s'] * 1000:.1f}", f"{v['command_s'] * 1000:.0f}", v["found"]]
           for k, v in out["find"].items()])
    q = out["find_quality"]
    table("find on LFW, one-shot", ["enrolled", "photos", "strangers' photos", "precision", "recall"],
          [[q["enrolled"], q["photos"], f"{q['strangers_photos']} ({q['strangers_photos'] / q['photos']:.0%})",
            f"{q['precision']:.4f}", f"{q['recall']:.4f}"]])


if __name__ == "__main__":
    main()
