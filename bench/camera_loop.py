"""The README's camera loop, ``for frame in frames: engine.faces(frame)``: this checkout against another source tree.

Usage: python bench/camera_loop.py --before DIR [--frames 100] [--runs 3] [--model fusion]

DIR is a source tree of the version to compare with, e.g. the commit before
the change: ``git archive <commit> | tar -x -C DIR``. A 640x480 MJPG video is
written from the face-recognition sdist photos (tests/images: each photo in
turn, moving a few pixels a frame, two people side by side among them) and
decoded once into memory, so only the API is timed, on the CPU. Three loops
run, each in a process of its own on the same interpreter and models:
``engine.faces(frame)`` before and after, and the path ``watch`` took before
(``engine.pipeline.frame`` on the RGB frame, which was not public). All three
load first, then take turns over blocks of 20 frames, in a rotating order, so
that a busy spell on a shared machine hits all alike; a run is every frame
once per loop, and the median of ``--runs`` is reported, with the load
average before and after. Each run also times 200 calls on a faceless 64x64
frame per loop: what a call costs besides the networks' work on faces.
The faces found and their embeddings are compared across the loops. Prints a
table and writes bench/results/camera_loop.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "tests" / "images"
BLOCK = 10  # frames timed in one turn: the loops take turns, so a busy spell on a shared machine hits all alike
BLANK_CALLS = 200  # per turn, when timing the cost of a call
PHOTOS = ("obama.jpg", "obama2.jpg", "biden.jpg", "obama3.jpg", "obama_partial_face.jpg", None)  # None: both

# One loop's process, run with PYTHONPATH set to the tree under test: loads the engine, then times the frames of
# each block it is told ("START END" on stdin), answering with the seconds; at the end, writes the embeddings.
LOOP = """
import sys, time, cv2, numpy as np, facecli
video, out, how, model = sys.argv[1:5]
capture = cv2.VideoCapture(video)
frames = []
while (frame := capture.read()[1]) is not None:
    frames.append(frame)
engine = facecli.load(model, device="cpu")
if how == "watch":
    def faces(frame):
        return engine.pipeline.frame(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
else:
    faces = engine.faces
for frame in frames[:5]:  # warm up: the first runs of each network allocate
    faces(frame)
found = {}
blank = np.full((64, 64, 3), 100, np.uint8)  # no face: what is left is the cost of a call
faces(blank)
print(len(frames), flush=True)
for line in sys.stdin:
    a, b = line.split()
    start = time.perf_counter()
    if a == "blank":
        for _ in range(int(b)):
            faces(blank)
    else:
        for i in range(int(a), int(b)):
            found[i] = faces(frames[i])
    print(time.perf_counter() - start, flush=True)
np.save(out, np.stack([f.embedding for i in sorted(found) for f in found[i]]))
print(sum(map(len, found.values())), flush=True)
"""


def write_video(path: Path, count: int) -> None:
    """``count`` 640x480 frames: each photo (or obama.jpg and biden.jpg side by side) for a few frames, sliding."""
    def photo(name: str | None) -> np.ndarray:
        if name is None:
            a, b = (cv2.imread(str(IMAGES / n)) for n in ("obama.jpg", "biden.jpg"))
            b = cv2.resize(b, (round(b.shape[1] * a.shape[0] / b.shape[0]), a.shape[0]))
            return np.hstack([a, b])
        return cv2.imread(str(IMAGES / name))

    pictures = []
    for name in PHOTOS:
        im = photo(name)
        scale = min(600 / im.shape[1], 440 / im.shape[0])
        pictures.append(cv2.resize(im, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 480))
    per = max(1, count // len(pictures))
    for i in range(count):
        im = pictures[min(i // per, len(pictures) - 1)]
        canvas = np.full((480, 640, 3), 100, np.uint8)
        x, y = (i % per) * 2, 20 + (i % per)  # the face moves a little from frame to frame
        h, w = min(im.shape[0], 480 - y), min(im.shape[1], 640 - x)
        canvas[y:y + h, x:x + w] = im[:h, :w]
        writer.write(canvas)
    writer.release()


class Loop:
    """One loop's process (``LOOP``), loaded and waiting for blocks of frames to time."""

    def __init__(self, tree: Path, video: Path, out: Path, how: str, model: str) -> None:
        # run in the tree: ``python -c`` puts the working directory ahead of PYTHONPATH
        self.proc = subprocess.Popen([sys.executable, "-c", LOOP, str(video), str(out), how, model], cwd=tree,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=dict(os.environ, PYTHONPATH=str(tree), FACECLI_DEVICE="cpu"))
        self.frames = int(self._answer())

    def _answer(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"a loop failed ({self.proc.wait()})")
        return line

    def time(self, start: int | str, end: int) -> float:
        """Seconds for frames ``start`` to ``end``, or for ``end`` calls on a faceless 64x64 frame (``start``
        "blank")."""
        self.proc.stdin.write(f"{start} {end}\n")
        self.proc.stdin.flush()
        return float(self._answer())

    def close(self) -> int:
        """The number of faces found in all the frames; the embeddings are written."""
        self.proc.stdin.close()
        faces = int(self._answer())
        self.proc.wait()
        return faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="source tree of the version to compare with")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="fusion")
    args = parser.parse_args()
    loops = {"before faces()": (args.before.resolve(), "faces"), "before watch path": (args.before.resolve(), "watch"),
             "after faces()": (ROOT, "faces")}
    load = [os.getloadavg()]
    fps: dict[str, list[float]] = {k: [] for k in loops}
    call_ms: dict[str, list[float]] = {k: [] for k in loops}
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "frames.avi"
        write_video(video, args.frames)
        saved = {k: Path(tmp) / f"{k.replace(' ', '_')}.npy" for k in loops}
        running = {k: Loop(tree, video, saved[k], how, args.model) for k, (tree, how) in loops.items()}
        for run in range(args.runs):
            seconds = dict.fromkeys(loops, 0.0)
            for block, start in enumerate(range(0, args.frames, BLOCK)):
                names = list(loops)
                k = (run + block) % len(names)
                for label in names[k:] + names[:k]:  # the loops take turns, each first in its turn
                    seconds[label] += running[label].time(start, min(start + BLOCK, args.frames))
            for label in loops:
                fps[label].append(round(args.frames / seconds[label], 2))
                print(f"run {run + 1} {label}: {fps[label][-1]:.2f} frames/s", file=sys.stderr)
            for label in names[run % len(names):] + names[:run % len(names)]:
                call_ms[label].append(round(running[label].time("blank", BLANK_CALLS) / BLANK_CALLS * 1000, 3))
        faces = {k: loop.close() for k, loop in running.items()}
        embeddings = {k: np.load(saved[k]) for k in loops}
    load.append(os.getloadavg())
    reference = embeddings["before faces()"]
    differ = {k: float(np.max(np.abs(v - reference))) if v.shape == reference.shape else None
              for k, v in embeddings.items()}
    medians = {k: statistics.median(v) for k, v in fps.items()}
    calls = {k: statistics.median(v) for k, v in call_ms.items()}
    result = {"frames": args.frames, "model": args.model, "before": str(args.before.resolve()), "runs": fps,
              "median_fps": medians, "faceless_64px_call_ms": call_ms, "median_call_ms": calls, "faces": faces,
              "max_abs_embedding_difference": differ,
              "after_over_before": round(medians["after faces()"] / medians["before faces()"], 3),
              "after_over_watch_path": round(medians["after faces()"] / medians["before watch path"], 3),
              "load_average_start_end": load, "cpus": os.cpu_count()}
    print(f"camera loop: {args.frames} frames 640x480, --model {args.model}, CPU, median of {args.runs} "
          f"(load average {load[0][0]:.1f} at start, {load[1][0]:.1f} at end, {os.cpu_count()} CPUs)")
    print(f"{'loop':18} {'median fps':>10} {'faces':>6} {'max |emb diff|':>15} {'ms/call, no face':>17}  runs (fps)")
    for k in loops:
        d = "shape differs" if differ[k] is None else f"{differ[k]:.2e}"
        print(f"{k:18} {medians[k]:10.2f} {faces[k]:6d} {d:>15} {calls[k]:17.3f}  {' '.join(map(str, fps[k]))}")
    print(f"after / before: {result['after_over_before']:.3f}; after / watch path: "
          f"{result['after_over_watch_path']:.3f}")
    out = ROOT / "bench" / "results" / "camera_loop.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
