"""The watch command: faces in a video or a camera stream."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from facecli.cli import render
from facecli.cli.options import (
    EXIT_NO,
    EXIT_OK,
    CameraOpt,
    DetectorOpt,
    DetSize,
    Device,
    Force,
    Fpir,
    GalleryOpt,
    HeadOpt,
    Json,
    MinFace,
    MinGap,
    MinQuality,
    ModelOpt,
    Quiet,
    Tau,
    Verbose,
    VideoOpt,
    engine,
    head_for,
    load_head,
    model_for,
    open_gallery_at,
    output,
)
from facecli.decisions import MIN_FACE
from facecli.detectors import DET_SIZE
from facecli.errors import FaceCliError, InputError
from facecli.liveness import MIN_FPS
from facecli.private import check_replaceable, private_output
from facecli.video import ATTEMPTS, DELAY, StreamLost, open_video

app = typer.Typer()


@app.command()
def watch(
    video: VideoOpt = None, camera: CameraOpt = None,
    fps: Annotated[float, typer.Option(min=0.1, help="Frames per second to analyse (others are skipped).")] = 5.0,
    every: Annotated[int | None, typer.Option(min=1, show_default=False,
                                              help="Analyse every Nth frame instead of --fps.")] = None,
    gap: Annotated[float, typer.Option(min=0.0, help="Seconds unseen after which a face has left.")] = 1.0,
    reconnect: Annotated[int, typer.Option(
        min=0, metavar="N", help="Attempts to reopen a stream URL that drops, in a row (0: none).")] = ATTEMPTS,
    reconnect_delay: Annotated[float, typer.Option(
        min=0.0, metavar="SECONDS", help="Wait before the first attempt; doubled for each next one, at most 30 s.")
    ] = DELAY,
    annotate: Annotated[Path | None, typer.Option(
        "--annotate", metavar="OUT.mp4", show_default=False,
        help="Write the analysed frames, boxes and names drawn, to a video (.mp4 or .avi).")] = None,
    show: Annotated[bool, typer.Option("--show", help="Show the annotated frames in a window (q quits).")] = False,
    liveness: Annotated[bool, typer.Option(
        "--liveness", help="Also judge whether each face is live (blinks, depth from motion): events carry live and "
                           "its evidence, and an update when it changes; frames are analysed at 15 a second or "
                           "more.")] = False,
    min_face: MinFace = MIN_FACE, min_quality: MinQuality = None, min_gap: MinGap = None, tau: Tau = None,
    force: Force = False,
    fpir: Fpir = None,
    gallery: GalleryOpt = None,
    detector: DetectorOpt = None, model: ModelOpt = None, device: Device = "auto", head: HeadOpt = None,
    det_size: DetSize = DET_SIZE, json_lines: Json = False, quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """Identify faces in a video, a camera or a stream; one event per appearance. Exit 0 someone recognised, 1 nobody.

    Events: appear (a new face, with its name or "not recognized"), update (its name changed as more
    frames came in), leave (unseen for --gap seconds). A stream URL that drops is reopened (--reconnect);
    Ctrl-C ends the session (every face leaves), a second Ctrl-C at once. Works headless; a window only
    with --show.

    Examples:
      [bold]facecli watch --video door.mp4 --json | jq 'select(.event == "appear")'[/]
      [bold]facecli watch --camera 0 --fps 10 --annotate out.mp4[/]
      [bold]facecli watch --video rtsp://user:pass@camera/stream --json[/]
    """
    # numpy and OpenCV: loaded only by the commands that detect or embed
    import cv2

    from facecli.cli import annotate as drawing
    from facecli.liveness.face import live_faces

    out = output(json_lines, quiet, verbose)
    tuned = load_head(head)
    if (video is None) == (camera is None):
        raise FaceCliError("watch", "give --video FILE|URL or --camera N (exactly one of them)")
    if annotate is not None and annotate.suffix.lower() not in (".mp4", ".avi"):
        raise InputError(str(annotate), "the annotated video must end in .mp4 or .avi")
    if annotate is not None:
        check_replaceable(annotate, InputError)  # before the video is opened; and again when it is moved there
    if show:
        try:
            cv2.namedWindow("facecli")
        except cv2.error:
            raise FaceCliError("--show", "this OpenCV build has no GUI (opencv-python-headless); "
                                         "use --annotate OUT.mp4, or install opencv-python") from None
    stop = threading.Event()
    with stop_on_interrupt(stop):  # from here on, Ctrl-C ends the session cleanly
        source = open_video(video if video is not None else camera, reconnect, reconnect_delay, out.warn)
        length = f"{source.length} frames" if source.length is not None else "live"
        out.info(f"{source.label}: {source.fps:g} fps, {length}")
        if liveness and every is None:
            fps = max(fps, MIN_FPS)  # blinks are missed below it
        step = every or max(1, round(source.fps / fps))
        writer = None
        recognised = False
        lost: StreamLost | None = None
        # the annotated video is written beside its name, 0600, and moved there at the end, also when the stream
        # is lost (what was recorded is kept): never through a link planted at the name
        with open_gallery_at(gallery, model, embeds=True) as g, out.results(render.EVENTS) as results, \
                private_output(annotate, InputError) if annotate is not None else contextlib.nullcontext() as target:
            tuned = head_for(g, tuned)
            eng = engine(out, model_for(model, g, tuned), detector, device, det_size=det_size, head=tuned)
            threshold = eng.threshold(g, tau, fpir, force, min_gap=min_gap)
            try:
                checks = live_faces(prompt=out.prompt, device=device) if liveness else None
                for frame in eng.watch(g, source, threshold, step, gap, min_face, stop, min_quality, checks):
                    for e in frame.events:
                        row = render.event_row(e, frame.index, threshold)
                        recognised |= row["name"] is not None
                        results.add(row)
                    if frame.image is None or (annotate is None and not show):
                        continue
                    picture = drawing.draw(frame.image, drawing.labelled(frame.faces, frame.decisions))
                    if annotate is not None:
                        writer = writer or _video_writer(target, annotate, source.fps / step, picture.shape)
                        writer.write(picture)
                    if show:
                        cv2.imshow("facecli", picture)
                        if cv2.waitKey(1) & 0xFF == ord("q"):
                            stop.set()  # the next frame ends the session: every face leaves
            except StreamLost as exc:  # reported once the recording is in place
                lost = exc
            finally:
                if writer is not None:
                    writer.release()
        if lost is not None:
            raise lost
    raise typer.Exit(EXIT_OK if recognised else EXIT_NO)


@contextmanager
def stop_on_interrupt(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C sets ``stop`` (the session ends after this frame, every face leaving); a second one kills."""
    def first(_signum: int, _frame: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        stop.set()

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _video_writer(path: Path, named: Path, fps: float, shape: tuple[int, ...]):
    """A writer into ``path`` (what becomes ``named``), its codec chosen by the extension."""
    # OpenCV: loaded only where pixels are decoded or drawn
    import cv2

    codec = {".mp4": "mp4v", ".avi": "MJPG"}[named.suffix.lower()]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (shape[1], shape[0]))
    if not writer.isOpened():
        raise InputError(str(named), "cannot write a video there")
    return writer
