"""verify --claim on a video: confirmed by decisions in a row, or a timeout; rows as the answer changes (real
photos made into a video, real models)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import door_clip


def _rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.fixture(scope="module")
def clip(images, tmp_path_factory):
    """4.5 s at 10 fps: Obama 1.5 s, nobody 1.5 s, Biden 1.5 s."""
    return door_clip(images, tmp_path_factory.mktemp("door") / "door.avi")


@pytest.fixture
def enrolled(run, images):
    for name, photo in (("obama", "obama.jpg"), ("biden", "biden.jpg")):
        assert run("enroll", name, str(images / photo)).returncode == 0
    return run


def test_the_claimed_face_is_confirmed_after_decisions_in_a_row(enrolled, clip):
    proc = enrolled("verify", "--video", str(clip), "--claim", "biden", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = _rows(proc.stdout)
    # one row per change of the answer: Obama is not Biden, then nobody, then Biden, confirmed
    assert [(r["event"], r["decision"]) for r in rows] == [
        ("decision", "different"), ("decision", "no face"), ("decision", "same"), ("confirmed", "same")]
    confirmed = rows[-1]
    assert confirmed["streak"] == 3 and confirmed["same"] is True and confirmed["claim"] == "biden"
    assert 3.0 <= rows[2]["time"] < confirmed["time"] <= 3.6  # Biden from 3.0 s; 3 decisions at 5 a second
    assert confirmed["file"] == str(clip) and confirmed["live"] is None and confirmed["liveness"] is None
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)


def test_no_confirmation_within_the_timeout_is_exit_1(enrolled, clip):
    proc = enrolled("verify", "--video", str(clip), "--claim", "biden", "--json", "--timeout", "1")
    assert proc.returncode == 1, proc.stderr
    last = _rows(proc.stdout)[-1]
    assert last["event"] == "timeout" and last["decision"] == "different" and 1.0 <= last["time"] < 1.2


def test_a_video_that_ends_first_and_faces_too_small_never_open(enrolled, clip):
    proc = enrolled("verify", "--video", str(clip), "--claim", "biden", "--json", "--min-face", "5000")
    assert proc.returncode == 1, proc.stderr
    rows = _rows(proc.stdout)
    assert rows[-1]["event"] == "ended" and not any(r["same"] for r in rows)
    assert {r["reason"] for r in rows if r["decision"] == "cannot judge"} == {"too small"}


@pytest.mark.parametrize("args, says", [
    (["PHOTO", "--claim", "obama", "--liveness"], "cannot show that a face is live"),
    (["--video", "VIDEO", "--claim", "obama", "--challenge"], "add --liveness"),
    (["--video", "PHOTO", "--claim", "obama"], "not a video"),
    (["--video", "VIDEO", "--camera", "0", "--claim", "obama"], "one of them"),
    (["PHOTO", "--video", "VIDEO", "--claim", "obama"], "without a photo"),
    (["--video", "VIDEO"], "--claim NAME"),
    (["--video", "VIDEO", "--claim", "nobody"], "no such person"),
])
def test_what_cannot_be_done_is_one_line_and_exit_2(enrolled, images, clip, args, says):
    given = {"PHOTO": str(images / "obama2.jpg"), "VIDEO": str(clip)}
    proc = enrolled("verify", *[given.get(a, a) for a in args])
    assert proc.returncode == 2 and proc.stdout == ""
    assert says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
