"""verify --claim on a camera or a video: the door script's command (``facecli.door`` decides)."""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from facecli.cli import render
from facecli.cli.options import EXIT_NO, EXIT_OK, engine, head_for, model_for, open_gallery_at
from facecli.cli.output import Output
from facecli.cli.video import stop_on_interrupt
from facecli.heads import LoadedHead
from facecli.liveness import MIN_FPS
from facecli.video import open_video

Timeout = Annotated[float, typer.Option(
    min=0.1, metavar="SECONDS",
    help="With --camera/--video: give up (exit 1) when no face is confirmed as NAME within this time.")]
Liveness = Annotated[bool, typer.Option(
    "--liveness", help="With --camera/--video: also require the face to be live (blinks, depth from motion).")]
Challenge = Annotated[bool, typer.Option(
    "--challenge", help="With --liveness: print a random instruction on stderr (turn, blink twice) and require "
                        "it to be done, so that a recorded clip does not pass.")]

#: Frames per second embedded and decided; the ones between are only detected (and followed for liveness).
DECIDE_FPS = 5.0


def verify_at_door(out: Output, source: str | int, claim: str, timeout: float, liveness: bool, challenge: bool,
                   gallery: str | None, model: str | None, detector: str | None, device: str, flip: bool | None,
                   det_size: int, head: LoadedHead | None, tau: float | None, force: bool, templates: str,
                   min_face: float, min_quality: float | None, stop: threading.Event) -> None:
    """Watch ``source`` until its face is confirmed as ``claim`` (exit 0), the time runs out or it ends (exit 1)."""
    check = None
    if liveness:
        # numpy and OpenCV (the face mesh): loaded only by the commands that check liveness
        from facecli.liveness.face import live_faces

        check = live_faces(challenge, out.prompt, device)
    with stop_on_interrupt(stop), open_gallery_at(gallery, model, embeds=True) as g, \
            out.results(render.DOORS) as results:
        head = head_for(g, head)
        eng = engine(out, model_for(model, g, head), detector, device, flip, det_size, head=head)
        video = open_video(source, log=out.warn)
        step = max(1, int(video.fps // MIN_FPS))  # never under what liveness needs when the source has it
        embed_every = max(1, round(video.fps / step / DECIDE_FPS))
        out.info(f"{video.label}: {video.fps:g} fps; analysing every {step}. frame, deciding on every "
                 f"{embed_every}. of those; waiting up to {timeout:g} s for {claim}")
        confirmed = False
        for e in eng.verify_at_door(g, video, claim, timeout, tau, step, embed_every, templates, min_face, check,
                                    force, stop, min_quality):
            confirmed |= e.confirmed
            results.add(render.door_row(e, video.label))
    raise typer.Exit(EXIT_OK if confirmed else EXIT_NO)
