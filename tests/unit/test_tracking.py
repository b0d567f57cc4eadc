"""facecli watch's tracker on hand-made detections, and passwords hidden in stream URLs (no models)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facecli.tracking import Tracker
from facecli.values import Decision, Detection, Face, Threshold
from facecli.video import redact

# -- the tracker on hand-made detections -------------------------------------------------------------

ALICE, BOB = np.eye(4, dtype=np.float32)[0], np.eye(4, dtype=np.float32)[1]  # squared distance 2: different people


def _face(box: tuple[float, float, float, float], embedding: np.ndarray | None = None) -> Face:
    return Face(0, Detection(box, 0.9), (), embedding)


def _said(name: str | None, distance: float = 0.3, too_small: bool = False) -> Decision:
    return Decision(name, distance, [], Threshold(1.0), too_small)


def _step(tracker: Tracker, t: float, *faces: tuple[Face, Decision]) -> list:
    return tracker.update(t, [f for f, _ in faces], [d for _, d in faces])


def _walk(x: float, y: float = 0.0, size: float = 100.0) -> tuple[float, float, float, float]:
    return x, y, x + size, y + size


def test_tracks_follow_overlapping_boxes_and_leave_after_the_gap():
    t = Tracker(max_gap=1.0)  # no tau: boxes only
    events = _step(t, 0.0, (_face(_walk(0)), _said("alice")))
    assert [(e.kind, e.track.id) for e in events] == [("appear", 1)]
    assert _step(t, 0.2, (_face(_walk(5)), _said("alice")), (_face(_walk(400)), _said(None, 1.5)))[0].kind == "appear"
    # one blurred frame does not rename alice: the majority name stands
    assert [e.kind for e in _step(t, 0.4, (_face(_walk(10)), _said(None, 1.5)))] == []
    assert t.live[0].name == "alice"
    # the stranger was missing at 0.4: gone at last seen + gap; Alice has not been missed by a frame yet
    assert [(e.kind, e.track.id, e.time) for e in _step(t, 2.0)] == [("leave", 2, 1.2)]
    # missed at 2.0, seen last at 0.4: she left at 1.4, but events already went out for 2.0
    assert [(e.kind, e.track.id, e.time) for e in _step(t, 2.2)] == [("leave", 1, 2.0)]
    assert t.finish(2.2) == []


def test_a_face_only_not_looked_at_has_not_left():
    """Analysis slower than --gap (a live source on a slow machine): present in every analysed frame, one track."""
    t = Tracker(tau=1.3, sure=1.1, max_gap=1.0)
    events = [e for k in range(4) for e in _step(t, 1.5 * k, (_face(_walk(300 * k), ALICE), _said("alice")))]
    assert [e.kind for e in events] == ["appear"]
    assert [(e.kind, e.time) for e in t.finish(5.0)] == [("leave", 5.0)]  # the end came before last seen + gap


def test_a_walker_whose_boxes_never_overlap_is_one_track():
    """Two face widths per analysed frame (a walker at 5 fps): no overlap, one person, one track."""
    boxes_only, tracker = Tracker(), Tracker(tau=1.3, sure=1.1)
    appeared: dict[Tracker, int] = {boxes_only: 0, tracker: 0}
    for k in range(10):
        for tr in (boxes_only, tracker):
            appeared[tr] += sum(e.kind == "appear" for e in _step(tr, k * 0.2, (_face(_walk(200 * k), ALICE),
                                                                                _said("alice"))))
    assert appeared[boxes_only] == 10  # what watch did before: one appearance, ten tracks
    assert appeared[tracker] == 1 and [tr.id for tr in tracker.live] == [1]
    assert tracker.live[0].velocity[0] == pytest.approx(1000)  # pixels per second, for the prediction


def test_a_stranger_in_the_place_of_someone_who_left_is_a_new_track():
    t = Tracker(tau=1.3, sure=1.1)
    _step(t, 0.0, (_face(_walk(0), ALICE), _said("alice")))
    _step(t, 0.2, (_face(_walk(0), ALICE), _said("alice")))
    events = _step(t, 0.6, (_face(_walk(0), BOB), _said(None, 1.6)))  # same box, 0.4 s later, another face
    assert [(e.kind, e.track.id) for e in events] == [("appear", 2)]
    # a face that moved beyond reach is not the same one, however alike
    far = _step(t, 0.8, (_face(_walk(0), BOB), _said(None)), (_face(_walk(2000), ALICE), _said("alice")))
    assert [(e.kind, e.track.id) for e in far] == [("appear", 3)]


def test_people_who_cross_or_meet_and_turn_back_keep_their_tracks():
    """Alice walks right, Bob left; they pass each other, or meet and turn back. Motion alone is fooled
    by the turn (the tracks swap people), the embeddings are not."""
    def path(k: int, turn: bool) -> float:
        return 40 * (8 - k) if turn and k > 4 else 40 * k

    for turn in (False, True):
        for tau, swapped in ((None, turn), (1.3, False)):
            t = Tracker(tau=tau, sure=tau)
            for k in range(9):
                a, b = _walk(path(k, turn)), _walk(320 - path(k, turn))
                _step(t, k * 0.2, (_face(a, ALICE), _said("alice")), (_face(b, BOB), _said("bob")))
            assert [tr.id for tr in t.live] == [1, 2]
            alice = t.live[0]  # track 1 began as Alice, on the left
            assert (alice.box[0] == path(8, turn)) is not swapped, (turn, tau)
            assert ("bob" in alice.votes) is swapped  # a swapped track mixes two people's frames


def test_too_small_faces_are_followed_by_overlap_and_do_not_vote():
    t = Tracker(tau=1.3, sure=1.1)
    _step(t, 0.0, (_face(_walk(0, size=15), ALICE), _said(None, too_small=True)))
    _step(t, 0.2, (_face(_walk(2, size=15), BOB), _said(None, too_small=True)))  # embeddings not compared
    assert len(t.live) == 1 and t.live[0].too_small and t.live[0].label == "too small to identify"
    _step(t, 0.4, (_face(_walk(40, size=15), ALICE), _said(None, too_small=True)))  # no overlap
    assert len(t.live) == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 2)), max_size=4), min_size=1, max_size=25),
       st.floats(0.0, 1.5))
def test_event_times_never_decrease(frames, gap):
    """Any sequence of frames (faces on a grid of places, three people): event times never go back."""
    t = Tracker(tau=1.3, sure=1.1, max_gap=gap)
    times = []
    for k, faces in enumerate(frames):
        found = [(_face(_walk(80 * x), np.eye(4, dtype=np.float32)[who]), _said(str(who))) for x, who in faces]
        times += [e.time for e in _step(t, k * 0.2, *found)]
    times += [e.time for e in t.finish(len(frames) * 0.2)]
    assert times == sorted(times)


def test_passwords_in_urls_are_never_printed():
    assert redact("rtsp://admin:hunter2@10.0.0.5:554/stream1") == "rtsp://admin:***@10.0.0.5:554/stream1"
    assert redact("http://cam/video.mjpg?user=admin&pwd=hunter2&res=hd") == "http://cam/video.mjpg?user=admin&pwd=***&res=hd"
    assert redact("https://u:p:w@host/x") == "https://u:***@host/x"
    assert redact("rtsp://host/plain") == "rtsp://host/plain"
    assert "hunter2" not in redact("http://a:hunter2@[::1/x")  # not parseable: everything before @ hidden


def test_too_poor_faces_are_followed_by_overlap_do_not_vote_and_say_so():
    t = Tracker(tau=1.0, max_gap=1.0)
    poor = Decision(None, 0.3, [], Threshold(1.0), too_poor=True)
    _step(t, 0.0, (Face(0, Detection(_walk(0), 0.9), (), ALICE, quality=0.1), poor))
    _step(t, 0.2, (Face(0, Detection(_walk(2), 0.9), (), BOB, quality=0.2), poor))  # embeddings not compared
    (track,) = t.live
    assert track.too_poor and not track.too_small and track.label == "too poor to identify"
    assert track.quality == pytest.approx(0.2)  # the best seen
    _step(t, 0.4, (Face(0, Detection(_walk(4), 0.9), (), ALICE, quality=0.9), _said("alice")))
    assert track.name == "alice" and track.label == "recognized"


def test_ambiguous_faces_are_followed_by_their_face_but_vote_for_nobody_and_say_so():
    t = Tracker(tau=1.0, max_gap=1.0)
    torn = Decision(None, 0.3, [], Threshold(1.0, 2, 0.01, 0.1), ambiguous=True)
    _step(t, 0.0, (_face(_walk(0), ALICE), torn))
    (track,) = t.live
    assert track.ambiguous and not track.too_small and not track.too_poor and track.label == "ambiguous"
    assert track.name is None and track.votes == {} and len(track.embeddings) == 1  # its face is still followed
    _step(t, 0.2, (_face(_walk(300), ALICE), torn))  # far away, but the same face: the same track
    assert t.live == [track]
    for time in (0.4, 0.6):  # two ambiguous frames could not outvote a name, nor make one "not recognized"
        _step(t, time, (_face(_walk(300), ALICE), torn))
    _step(t, 0.8, (_face(_walk(300), ALICE), _said("alice")))
    assert track.name == "alice" and track.label == "recognized" and track.votes == {"alice": 1}
