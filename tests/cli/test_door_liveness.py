"""verify --claim --liveness at the door, end to end: the real talking clip opens, a photo of the same person held
up to the camera does not, and a replay of the clip does not pass the challenge (real video, attacks built from
it, real models). The checks themselves are tested in tests/library/test_liveness.py."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers.attacks import photo_attack, portrait, replay_attack
from tests.helpers.meshes import read_video


def _rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def _write(frames, path: Path, fps: float = 15.0) -> Path:
    frames = list(frames)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


@pytest.fixture(scope="module")
def talker(blink_clip, tmp_path_factory) -> tuple[Path, np.ndarray]:
    """The clip's first frame, as the photo the person was enrolled from (and an attacker could print)."""
    capture = cv2.VideoCapture(str(blink_clip[0]))
    ok, frame = capture.read()
    capture.release()
    assert ok
    path = tmp_path_factory.mktemp("talker") / "talker.png"
    cv2.imwrite(str(path), frame)
    return path, frame


@pytest.fixture
def enrolled(run, talker):
    assert run("enroll", "talker", str(talker[0])).returncode == 0
    return run


def test_the_real_clip_is_confirmed_live_once_it_blinks(enrolled, blink_clip):
    proc = enrolled("verify", "--video", str(blink_clip[0]), "--claim", "talker", "--liveness", "--json")
    assert proc.returncode == 0, proc.stderr
    last = _rows(proc.stdout)[-1]
    assert last["event"] == "confirmed" and last["live"] is True and last["liveness"]["reason"] == "blinked"
    first_blink = blink_clip[1][0].start / 30.0
    assert last["liveness"]["blinks"] and abs(last["liveness"]["blinks"][0] - first_blink) < 0.3
    assert last["time"] >= first_blink  # not before the face proved it is there
    plain = _rows(enrolled("verify", "--video", str(blink_clip[0]), "--claim", "talker", "--json").stdout)[-1]
    assert plain["event"] == "confirmed" and plain["time"] < 1.0 and plain["live"] is None


@pytest.mark.parametrize("kind", ["print", "screen", "still"])
def test_a_photo_of_the_person_held_up_does_not_open(enrolled, talker, tmp_path, kind):
    from facecli.detectors import create_detector

    _, frame = talker
    box = create_detector("yunet", "cpu").detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))[0].box
    video = _write(photo_attack(kind, portrait(frame, box), seed=7), tmp_path / f"{kind}.avi")
    fooled = enrolled("verify", "--video", str(video), "--claim", "talker", "--json")
    assert fooled.returncode == 0  # without liveness the photo passes: what --liveness is for
    proc = enrolled("verify", "--video", str(video), "--claim", "talker", "--liveness", "--json")
    assert proc.returncode == 1, proc.stderr
    rows = _rows(proc.stdout)
    assert rows[-1]["event"] in ("ended", "timeout") and not any(r["live"] for r in rows)
    assert any(r["decision"] == "same" for r in rows)  # the right face, refused for not being there


def test_a_replay_of_the_clip_fails_the_challenge(enrolled, blink_clip, tmp_path):
    frames, fps = read_video(str(blink_clip[0]))
    video = _write(replay_attack(frames, fps, seed=3), tmp_path / "replay.avi")
    proc = enrolled("verify", "--video", str(video), "--claim", "talker", "--liveness", "--challenge", "--json",
                    "--timeout", "9")
    assert proc.returncode == 1, proc.stderr
    assert "challenge: " in proc.stderr  # the instruction, shown to the person at the door
    rows = _rows(proc.stdout)
    assert not any(r["live"] for r in rows) and rows[-1]["liveness"]["challenge"]["state"] != "passed"


def test_watch_says_when_a_face_is_found_live(enrolled, blink_clip):
    proc = enrolled("watch", "--video", str(blink_clip[0]), "--liveness", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = _rows(proc.stdout)
    appear = rows[0]
    assert appear["event"] == "appear" and appear["name"] == "talker" and appear["live"] is None
    live = [r for r in rows if r["live"] is True]
    assert live and live[0]["event"] == "update" and live[0]["liveness"]["blinks"]
    assert live[0]["time"] >= blink_clip[1][0].start / 30.0  # once it blinked
    assert rows[-1]["event"] == "leave" and rows[-1]["live"] is True
