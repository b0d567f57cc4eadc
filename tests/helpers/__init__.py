"""What the tests of every level share: the installed command, JSON Lines, the one-line error, variant photos.

The modules beside this one build test inputs and servers: ``bombs`` (hostile image files), ``fetch_images``
(the photos, also run by ``make images``), ``heads`` (projection heads trained on LFW), ``pg_server`` (a
throw-away PostgreSQL) and ``postgres`` (its roles, fixtures and the command run against it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: the checkout: tests/helpers/ is two folders below it
ROOT = Path(__file__).resolve().parents[2]
FACECLI = str(Path(sys.executable).with_name("facecli"))


def json_rows(stdout: str) -> list[dict]:
    """Parse JSON Lines output; fails if any stdout line is not JSON."""
    return [json.loads(line) for line in stdout.splitlines()]


def one_line_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    """The one ``error: ...`` line a refused command prints (exit 2, no traceback), holding every one of ``words``."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    line = proc.stderr.rstrip("\n")
    assert line.startswith("error: ") and all(w in line for w in words), line
    return line


def variant_photos(images: Path, folder: Path, longest: int, growth: float, mirror: bool, n: int = 200) -> list[Path]:
    """``n`` distinct real photos: the four portraits scaled to about ``longest`` px (growing by ``growth`` steps),
    shifted, mirrored every other 8 when ``mirror``, and re-encoded at JPEG qualities 80-94."""
    import cv2

    sources = [cv2.imread(str(images / name)) for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")]
    out = []
    for i in range(n):
        img = sources[i % 4]
        scale = longest / max(img.shape[:2]) * (1 + (i // 4) % 10 * growth)
        small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)[:, i // 40:]
        if mirror and (i // 8) % 2:
            small = small[:, ::-1]
        path = folder / f"photo{i:03d}.jpg"
        cv2.imwrite(str(path), small, [cv2.IMWRITE_JPEG_QUALITY, 80 + i % 15])
        out.append(path)
    return out


def door_clip(images: Path, path: Path) -> Path:
    """A 4.5 s, 10 fps MJPEG video at ``path`` built from the photos: Obama 1.5 s, nobody 1.5 s, Biden 1.5 s, each
    photo scaled to the 640 x 480 frame's height and centred on grey."""
    import cv2
    import numpy as np

    def frame(photo: str | None) -> np.ndarray:
        canvas = np.full((480, 640, 3), 90, np.uint8)
        if photo:
            im = cv2.imread(str(images / photo))
            im = cv2.resize(im, (round(im.shape[1] * 480 / im.shape[0]), 480))[:, :640]
            x = (640 - im.shape[1]) // 2
            canvas[:, x:x + im.shape[1]] = im
        return canvas

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for photo in ["obama2.jpg", None, "biden.jpg"]:
        picture = frame(photo)
        for _ in range(15):
            writer.write(picture)
    writer.release()
    return path


def empty_gallery(location: str | Path, model: str) -> None:
    """A gallery built with ``model`` and nobody in it (a new gallery is created by its first write: here, one
    that leaves its FPIR setting as it is)."""
    from facecli.gallery import open_gallery

    with open_gallery(location, model, create=True) as g:
        g.set_fpir(None)
