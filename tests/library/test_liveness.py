"""Liveness on real video and real attacks, with the real face mesh: the talking clip and the turning clip are
live; printed photos, photos on a screen and still photos (built from the sample photos and LFW by
tests/helpers/attacks.py) are not; a replay of the talking clip on a screen fails the challenge, while frames of
the real clips that do what a step asks (spliced and mirrored: they simulate a complying user) pass it."""

from __future__ import annotations

import random

import cv2
import pytest

from facecli.detectors.yunet import YuNet
from facecli.imageio import read_image
from facecli.liveness.challenge import FAILED, PASSED, Challenge
from tests.helpers.attacks import photo_attack, portrait, replay_attack
from tests.helpers.clip import fetch_clip
from tests.helpers.meshes import follow, read_video
from tests.helpers.turning_clip import turning_frames

LFW_PHOTOS = ["Daniel_Osorno/Daniel_Osorno_0001.jpg", "Jacqueline_Gold/Jacqueline_Gold_0001.jpg"]


@pytest.fixture(scope="module")
def talking() -> tuple[list, float, list[range]]:
    video, blinks = fetch_clip()
    frames, fps = read_video(str(video))
    return frames, fps, blinks


@pytest.fixture(scope="module")
def talking_track(talking, mesh, yunet):
    frames, fps, _ = talking
    return follow(frames, fps, mesh, yunet)


@pytest.fixture(scope="module")
def turning() -> tuple[list, float]:
    return turning_frames()


def _portrait(path, yunet: YuNet):
    """The photo cropped as an attacker would print it: the face and its surroundings."""
    rgb = read_image(path)
    return portrait(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), yunet.detect(rgb)[0].box)


def test_the_talking_clip_is_live_by_its_one_quick_blink(talking, talking_track):
    _, fps, annotated = talking
    verdict = talking_track.judge(final=True)
    assert verdict.live is True, verdict
    # its first annotated blink (frames 168-176) is the blink seen; the lids that stay down from frame 229 to 275,
    # between its second and third annotations, are a 1.6 s look down, not a blink
    first = annotated[0]
    assert len(verdict.blinked) == 1, verdict.blinked
    assert (first.start - 3) / fps <= verdict.blinked[0] <= first.stop / fps


def test_the_talking_clip_is_live_at_15_frames_per_second(talking, mesh, yunet):
    frames, fps, _ = talking
    for phase in (0, 1):
        verdict = follow(frames[phase::2], fps / 2, mesh, yunet).judge(final=True)
        assert verdict.live is True, (phase, verdict)


def test_a_tilted_head_still_blinks(talking, mesh, yunet):
    """The clip turned 25 degrees in the image (a head tilted to one side), at 15 fps: its blink is still seen."""
    frames, fps, annotated = talking
    h, w = frames[0].shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0)
    tilted = [cv2.warpAffine(f, turn, (w, h), borderMode=cv2.BORDER_REPLICATE) for f in frames[::2]]
    verdict = follow(tilted, fps / 2, mesh, yunet).judge(final=True)
    assert verdict.live is True and len(verdict.blinked) == 1, verdict
    assert (annotated[0].start - 3) / fps <= verdict.blinked[0] <= annotated[0].stop / fps


def test_the_turning_clip_is_live_and_not_flat(turning, mesh, yunet):
    frames, fps = turning
    verdict = follow(frames, fps, mesh, yunet).judge(final=True)
    assert verdict.live is True, verdict
    assert verdict.depth.flat is False, verdict.depth


def _photos(images, yunet: YuNet, lfw) -> list:
    found = [_portrait(images / "obama.jpg", yunet), _portrait(images / "biden.jpg", yunet)]
    if lfw is not None:
        found += [_portrait(lfw / name, yunet) for name in LFW_PHOTOS]
    return found


@pytest.fixture(scope="module")
def lfw():
    """LFW's images folder, None where this checkout has no LFW beside it (the sample photos then serve alone)."""
    from tests.helpers.heads import LFW

    return None if LFW is None else LFW / "images"


@pytest.mark.parametrize("kind", ["print", "screen", "still"])
@pytest.mark.parametrize("seed", [0, 1])
def test_photo_attacks_are_not_live(kind, seed, images, lfw, mesh, yunet):
    photos = _photos(images, yunet, lfw)
    photo = photos[(seed * 3 + len(kind)) % len(photos)]
    verdict = follow(photo_attack(kind, photo, seed), 15.0, mesh, yunet).judge(final=True)
    assert verdict.frames > 100, verdict  # the face was followed: the attack is judged, not missed
    assert verdict.live is False, verdict
    assert verdict.blinked == (), verdict  # a photo never blinks
    if kind == "still":
        assert verdict.depth.flat is None, verdict.depth  # no motion: depth cannot tell, the blink decides


@pytest.mark.parametrize("seed", [0, 1])
def test_a_replay_of_the_talking_clip_fails_the_challenge(seed, talking, mesh, yunet):
    frames, fps, _ = talking
    challenge = Challenge.random(rng=random.Random(seed))
    track = follow(replay_attack(frames, fps, seed), 15.0, mesh, yunet, challenge)
    verdict = track.judge(final=True)
    assert verdict.frames > 100, verdict
    assert verdict.challenge.state == FAILED and verdict.live is False, verdict
    for step in ("turn-left", "turn-right", "blink-twice"):  # each step alone fails too
        assert Challenge((step,)).check(track.series, 0.0).state == FAILED, step


def test_two_blinks_spliced_from_the_clip_pass_blink_twice(talking, talking_track, mesh, yunet):
    """Simulates a user who blinks twice when asked: the clip's 1.5 s before its blink, then its blink again."""
    frames, fps, annotated = talking
    first = annotated[0]
    spliced = frames[first.start - 45:first.stop + 10] + frames[first.start - 8:first.stop + 10]
    track = follow(spliced, fps, mesh, yunet, Challenge(("blink-twice",)))
    verdict = track.judge(final=True)
    assert verdict.challenge.state == PASSED and verdict.live is True, verdict
    # the clip as it was recorded, one blink in 10 s, does not
    assert Challenge(("blink-twice",)).check(talking_track.series, 0.0).state == FAILED


@pytest.mark.parametrize("mirrored", [False, True])
def test_a_turn_from_the_turning_clip_passes_its_side_only(mirrored, turning, mesh, yunet):
    """Simulates a user who turns when asked: the turning clip's turn to the man's left (frames 30-100), and the
    same frames mirrored for a turn to his right."""
    frames, fps = turning
    segment = [f[:, ::-1].copy() if mirrored else f for f in frames[30:100]]
    series = follow(segment, fps, mesh, yunet).series
    asked, other = ("turn-right", "turn-left") if mirrored else ("turn-left", "turn-right")
    assert Challenge((asked,)).check(series, 0.0).state == PASSED
    assert Challenge((other,)).check(series, 0.0).state != PASSED
