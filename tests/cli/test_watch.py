"""watch: tracks in videos built from the real photos, inputs that are not videos, and streams served over
HTTP from 127.0.0.1 (a file with range requests, a dropped connection, a live MJPEG stream that drops and is
lost, Ctrl-C). The tracker on hand-made detections is tests/unit/test_tracking.py."""

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

from tests.helpers import FACECLI, door_clip, json_rows

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
    return door_clip(images, tmp_path_factory.mktemp("video") / "door.avi")


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
