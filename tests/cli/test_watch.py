"""watch: tracks (hand-made detections, then videos built from the real photos), inputs that are not
videos, and streams served over HTTP from 127.0.0.1 (a file with range requests, a dropped connection,
a live MJPEG stream that drops and is lost, Ctrl-C)."""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FACECLI, json_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from facecli.tracking import Tracker
from facecli.types import Decision, Detection, Face, Threshold
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


# -- videos built from the real photos ----------------------------------------------------------------
# A walker at 1.5 m/s with a 16 cm wide face box crosses 9.4 face widths per second, whatever the
# distance to the camera: an 80 px face moves 750 px/s, 30 px per frame at 25 fps, 150 px (almost two
# face widths) between frames analysed at 5 fps. Exposure 1/100 s: a 7 px horizontal motion blur.
FPS, FACE, WIDTH, HEIGHT = 25, 80, 960, 360
SPEED = 1.5 / 0.16 * FACE


@pytest.fixture(scope="module")
def sprites(images) -> dict[str, np.ndarray]:
    """Head and shoulders from obama2.jpg and biden.jpg, scaled to an 80 px wide face."""
    import facecli

    detector = facecli.load(embed=False).pipeline.detector
    out = {}
    for name, photo in (("obama", "obama2.jpg"), ("biden", "biden.jpg")):
        im = cv2.imread(str(images / photo))
        x1, y1, x2, y2 = detector.detect(cv2.cvtColor(im, cv2.COLOR_BGR2RGB))[0].box
        w, h = x2 - x1, y2 - y1
        crop = im[max(0, int(y1 - 0.6 * h)):int(y2 + 0.9 * h), max(0, int(x1 - 0.8 * w)):int(x2 + 0.8 * w)]
        scale = FACE / w
        out[name] = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return out


def _walk_video(path: Path, walkers: list[tuple[np.ndarray, int]]) -> Path:
    """Each walker (sprite, direction +1 rightwards / -1 leftwards) crosses the frame from outside to outside."""
    span = WIDTH + max(s.shape[1] for s, _ in walkers)
    n = math.ceil(span / SPEED * FPS) + 1
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    blurred = [(cv2.blur(sprite, (round(SPEED / 100), 1)), direction) for sprite, direction in walkers]
    for i in range(n):
        canvas = np.full((HEIGHT, WIDTH, 3), 110, np.uint8)
        for sprite, direction in blurred:
            moved = round(SPEED * i / FPS)
            x = -sprite.shape[1] + moved if direction > 0 else WIDTH - moved
            a, b = max(x, 0), min(x + sprite.shape[1], WIDTH)
            if a < b:
                rows = min(sprite.shape[0], HEIGHT - 40)
                canvas[40:40 + rows, a:b] = sprite[:rows, a - x:b - x]
        writer.write(canvas)
    writer.release()
    return path


@pytest.fixture(scope="module")
def walk(sprites, tmp_path_factory) -> Path:
    """Obama walking left to right at 1.5 m/s: 1.5 s, 38 frames."""
    return _walk_video(tmp_path_factory.mktemp("walk") / "walk.mp4", [(sprites["obama"], 1)])


@pytest.fixture(scope="module")
def gallery(images, tmp_path_factory) -> Path:
    """Obama (obama.jpg, not the walking photo) and Biden enrolled."""
    path = tmp_path_factory.mktemp("gallery") / "g.db"
    for name, photo in (("obama", "obama.jpg"), ("biden", "biden.jpg")):
        proc = _facecli("enroll", name, str(images / photo), "--gallery", str(path))
        assert proc.returncode == 0, proc.stderr
    return path


def _env() -> dict[str, str]:
    return dict(os.environ, FACECLI_DEVICE="cpu")


def _facecli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([FACECLI, *args], capture_output=True, text=True, env=_env(), timeout=timeout)


def _watch(gallery: Path, video: str, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    proc = _facecli("watch", "--video", video, "--gallery", str(gallery), "--json", *args)
    return proc, json_rows(proc.stdout)


def _in_order(events: list[dict]) -> bool:
    times = [e["time"] for e in events]
    return times == sorted(times)


def test_a_walker_across_a_25_fps_video_is_one_track(gallery, walk):
    proc, events = _watch(str(gallery), str(walk))
    assert proc.returncode == 0, proc.stderr
    assert [e["event"] for e in events if e["event"] != "update"] == ["appear", "leave"], events
    assert {e["track"] for e in events} == {1} and events[-1]["name"] == "obama"
    assert _in_order(events)
    leave = events[-1]
    assert leave["first_seen"] <= leave["last_seen"] < leave["time"] <= leave["last_seen"] + 1.0
    assert events[0]["box"][0] < WIDTH / 4 and leave["box"][0] > WIDTH / 2  # followed across the frame


def test_two_people_crossing_stay_two_tracks_with_their_names(gallery, sprites, tmp_path):
    video = _walk_video(tmp_path / "cross.mp4", [(sprites["obama"], 1), (sprites["biden"], -1)])
    proc, events = _watch(str(gallery), str(video))
    assert proc.returncode == 0, proc.stderr
    assert sorted(e["event"] for e in events) == ["appear", "appear", "leave", "leave"], events  # no rename
    name = {e["track"]: e["name"] for e in events if e["event"] == "appear"}
    assert sorted(name.values()) == ["biden", "obama"]
    assert _in_order(events)
    for track, who in name.items():
        appear, leave = (next(e for e in events if e["track"] == track and e["event"] == kind)
                         for kind in ("appear", "leave"))
        assert leave["name"] == who
        # each kept walking their own way: Obama rightwards, Biden leftwards
        assert (leave["box"][0] > appear["box"][0]) == (who == "obama")


# -- the clip from before: photos shown one after another ----------------------------------------------


@pytest.fixture(scope="module")
def clip(images, tmp_path_factory) -> Path:
    """A 4.5 s, 10 fps video built from the photos: Obama 1.5 s, nobody 1.5 s, Biden 1.5 s."""
    def frame(photo: str | None) -> np.ndarray:
        canvas = np.full((480, 640, 3), 90, np.uint8)
        if photo:
            im = cv2.imread(str(images / photo))
            im = cv2.resize(im, (round(im.shape[1] * 480 / im.shape[0]), 480))[:, :640]
            x = (640 - im.shape[1]) // 2
            canvas[:, x:x + im.shape[1]] = im
        return canvas

    path = tmp_path_factory.mktemp("video") / "door.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for photo in ["obama2.jpg", None, "biden.jpg"]:
        picture = frame(photo)
        for _ in range(15):
            writer.write(picture)
    writer.release()
    return path


def test_watch_reports_each_appearance_once(run, images, clip, tmp_path):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    out = tmp_path / "annotated.mp4"
    proc = run("watch", "--video", str(clip), "--json", "--every", "2", "--annotate", str(out))
    assert proc.returncode == 0, proc.stderr
    events = json_rows(proc.stdout)
    appear = [e for e in events if e["event"] == "appear"]
    assert [e["name"] for e in appear] == ["obama", None]  # Biden is not enrolled
    assert appear[0]["time"] < 1.5 <= appear[1]["time"] and appear[1]["decision"] == "not recognized"
    assert sorted(e["track"] for e in events if e["event"] == "leave") == [1, 2]
    assert _in_order(events)
    video = cv2.VideoCapture(str(out))
    assert video.get(cv2.CAP_PROP_FRAME_COUNT) == 23 and video.get(cv2.CAP_PROP_FRAME_WIDTH) == 640
    ok, first = video.read()
    video.release()
    assert ok and first.shape == (480, 640, 3)


def test_watch_faces_below_min_face_do_not_vote(run, images, clip):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    proc = run("watch", "--video", str(clip), "--json", "--every", "2", "--min-face", "5000")
    assert proc.returncode == 1, proc.stderr  # nobody recognised
    appear = [e for e in json_rows(proc.stdout) if e["event"] == "appear"]
    assert len(appear) == 2 and all(e["name"] is None for e in appear)
    assert {e["decision"] for e in appear} == {"too small to identify"}


def test_watch_refuses_what_is_not_a_video_in_one_line(run, images, clip, tmp_path):
    """Exit 2, one line on stderr: no FFmpeg or OpenCV message around it."""
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    text, empty, no_frames = tmp_path / "notes.avi", tmp_path / "empty.mp4", tmp_path / "no-frames.avi"
    text.write_text("not a video")
    empty.touch()
    cv2.VideoWriter(str(no_frames), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240)).release()
    assert cv2.VideoCapture(str(no_frames)).isOpened()  # it opens, and has no frame
    cases = {
        ("--video", str(tmp_path / "missing.mp4")): "no such video file",
        ("--video", str(images / "obama.jpg"), "--camera", "0"): "exactly one",
        ("--video", str(clip), "--annotate", str(tmp_path / "out.gif")): ".mp4 or .avi",
        ("--video", str(images / "obama.jpg")): "is a JPEG image, not a video",
        ("--video", str(images / "32bit.png")): "is a PNG image, not a video",
        ("--video", str(text)): "cannot open it as a video",
        ("--video", str(empty)): "empty file",
        ("--video", str(no_frames)): "no frame could be read",
        ("--video", str(tmp_path)): "is a directory",
    }
    if re.search(r"GUI:\s+NONE", cv2.getBuildInformation()):  # the headless build this project installs
        cases[("--video", str(clip), "--show")] = "no GUI"
    for args, message in cases.items():
        proc = run("watch", *args)
        assert proc.returncode == 2, args
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert proc.stdout == ""


# -- streams over HTTP from 127.0.0.1 -----------------------------------------------------------------


class _FileHandler(BaseHTTPRequestHandler):
    """Serves one file, answering range requests; drops the first ranged response that crosses ``drop_at``."""

    data = b""
    drop_at: int | None = None
    requests: list[str] = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.headers.get("Range", ""))
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        start, end = (int(m.group(1)), int(m.group(2) or len(self.data) - 1)) if m else (0, len(self.data) - 1)
        self.send_response(206 if m else 200)
        if m:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(self.data)}")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        body, drop = self.data[start:end + 1], type(self).drop_at
        if drop is not None and 0 < start < drop < end:  # mid-stream, while frames are being read
            type(self).drop_at = None
            body = body[:drop - start]
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            pass
        if len(body) < end - start + 1:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True


class _LiveHandler(BaseHTTPRequestHandler):
    """A camera's MJPEG stream (multipart/x-mixed-replace) at 25 fps, looping over ``frames``.

    Each connection sends ``per_connection`` frames (None: forever) then drops; after ``connections``
    connections the camera answers 503.
    """

    frames: list[bytes] = []
    per_connection: int | None = None
    connections: int | None = None
    served: list[str | None] = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.served.append(self.headers.get("Authorization"))
        if self.connections is not None and len(self.served) > self.connections:
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace;boundary=frame")
        self.end_headers()
        sent = 0
        try:
            while self.per_connection is None or sent < self.per_connection:
                jpeg = self.frames[sent % len(self.frames)]
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                 % (len(jpeg), jpeg))
                sent += 1
                time.sleep(1 / FPS)
        except OSError:
            return
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True


@contextmanager
def _serve(handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None,
           **state) -> Iterator[tuple[str, type]]:
    """An HTTP(S) server on 127.0.0.1 in a thread; yields its base URL and the handler class holding its state."""
    cls = type("Handler", (handler,), state)
    server = ThreadingHTTPServer(("127.0.0.1", 0), cls)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}", cls
    finally:
        server.shutdown()
        server.server_close()


def _frames_of(video: Path) -> list[bytes]:
    capture, out = cv2.VideoCapture(str(video)), []
    while (frame := capture.read()[1]) is not None:
        out.append(cv2.imencode(".jpg", frame)[1].tobytes())
    return out


def _same_events(a: list[dict], b: list[dict]) -> bool:
    keys = ("event", "time", "frame", "track", "name")
    return [[e[k] for k in keys] for e in a] == [[e[k] for k in keys] for e in b]


@pytest.fixture(scope="module")
def local_events(gallery, walk) -> list[dict]:
    """The walk's events read from the file itself."""
    return _watch(gallery, str(walk))[1]


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1 (made by the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a certificate with")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "key.pem"),
                    "-out", str(d / "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1"], check=True,
                   capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(d / "cert.pem", d / "key.pem")
    return context


def test_a_video_served_over_http_with_range_requests(gallery, walk, local_events):
    with _serve(_FileHandler, data=walk.read_bytes(), requests=[]) as (url, server):
        proc, events = _watch(gallery, f"{url}/walk.mp4")
    assert proc.returncode == 0, proc.stderr
    assert _same_events(events, local_events) and proc.stderr == ""
    # the MP4 index is at the end: FFmpeg came back for the frames with a range request
    assert any(re.fullmatch(r"bytes=[1-9]\d*-\d*", r) for r in server.requests), server.requests


def test_a_video_served_over_https(gallery, walk, local_events, tls):
    with _serve(_FileHandler, tls, data=walk.read_bytes(), requests=[]) as (url, _):
        proc, events = _watch(gallery, f"{url}/walk.mp4")
    assert url.startswith("https://") and proc.returncode == 0, proc.stderr
    assert _same_events(events, local_events) and proc.stderr == ""


def test_a_dropped_http_connection_is_resumed_where_it_stopped(gallery, walk, local_events):
    data = walk.read_bytes()
    with _serve(_FileHandler, data=data, drop_at=len(data) * 6 // 10, requests=[]) as (url, server):
        proc, events = _watch(gallery, f"{url}/walk.mp4", "--reconnect-delay", "0.1")
    assert proc.returncode == 0, proc.stderr
    assert server.drop_at is None  # the connection was dropped
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and "stream dropped after frame" in lines[0] and "attempt 1 of 5" in lines[0], lines
    assert "reconnected at frame" in lines[1]
    assert _same_events(events, local_events)  # no frame lost or repeated: the same events at the same times


def test_a_live_stream_that_drops_is_retried_then_lost(gallery, walk):
    with _serve(_LiveHandler, frames=_frames_of(walk), per_connection=30, connections=2, served=[]) as (url, cam):
        stream = url.replace("http://", "http://admin:hunter2@") + "/cam.mjpg"
        proc, events = _watch(gallery, stream, "--reconnect", "2", "--reconnect-delay", "0.05")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert "hunter2" not in proc.stderr + proc.stdout and "admin:***@127.0.0.1" in lines[-1]
    dropped = [line for line in lines if "stream dropped" in line]
    assert [re.search(r"attempt \d of 2", line)[0] for line in dropped] == ["attempt 1 of 2", "attempt 1 of 2",
                                                                          "attempt 2 of 2"], lines
    assert sum("reconnected" in line for line in lines) == 1 and len(lines) == 5
    assert lines[-1].startswith("error:") and "stream lost: 2 reconnection attempts failed" in lines[-1]
    assert len(cam.served) == 4  # two streams, two refusals
    assert events and _in_order(events)  # frames of both connections were analysed ...
    appeared = {e["track"] for e in events if e["event"] == "appear"}
    assert appeared == {e["track"] for e in events if e["event"] == "leave"}  # ... and every face left


def test_ctrl_c_ends_a_live_stream_cleanly(gallery, walk):
    with _serve(_LiveHandler, frames=_frames_of(walk), served=[]) as (url, _):
        proc = subprocess.Popen([FACECLI, "watch", "--video", f"{url}/cam.mjpg", "--gallery", str(gallery),
                                 "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        try:
            first = json_rows(proc.stdout.readline())
            proc.send_signal(signal.SIGINT)
            rest, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
    events = first + json_rows(rest)
    assert proc.returncode == 0 and err == "", err
    assert events[0]["event"] == "appear" and events[-1]["event"] == "leave" and _in_order(events)


def test_an_unreachable_stream_is_one_line_without_its_password(run):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run("watch", "--video", f"rtsp://admin:hunter2@127.0.0.1:{port}/stream")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == f"error: rtsp://admin:***@127.0.0.1:{port}/stream: cannot open the stream " \
                                  "(unreachable, refused, or not a video)"
