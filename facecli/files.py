"""The files facecli writes beside its results: face crops, annotated pictures, cluster links.

Every name is made here (``<n>-<sanitised stem><suffix>``), unique per input
number and free of separators, so no input name can make facecli write
outside the folder it was given.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from facecli.errors import InputError

if TYPE_CHECKING:
    from facecli.types import ClusteredFace, Detection, Face


def make_folder(folder: Path) -> None:
    """Create an output folder (and its parents), or say in one line why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(str(folder), f"cannot create the folder: {exc.strerror or exc}") from None


def safe_name(n: int, source: str, suffix: str = "", ext: str = ".png") -> str:
    """``<n>-<sanitised stem><suffix><ext>``: unique per input number, no separators, no leading dot."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source).stem)[:80].lstrip(".") or "image"
    return f"{n:05d}-{stem}{suffix}{re.sub(r'[^A-Za-z0-9.]', '', ext)[:10]}"


def write_crop(folder: Path, n: int, source: str, face: Face) -> Path:
    """Save a face's model input crop as ``<n>-<stem>-face<i>.png`` inside ``folder``."""
    import cv2

    target = folder / safe_name(n, source, f"-face{face.index}")
    cv2.imwrite(str(target), cv2.cvtColor(face.crop, cv2.COLOR_RGB2BGR))
    return target


def write_annotated(folder: Path, n: int, source: str,
                    faces: list[tuple[Detection, str | None, bool | None]]) -> Path:
    """Decode ``source`` again, draw the faces on it (``annotate.draw``) and save it as a PNG in ``folder``."""
    import cv2

    from facecli.annotate import draw
    from facecli.imageio import read_image

    target = folder / safe_name(n, source)
    cv2.imwrite(str(target), draw(read_image(source), faces))
    return target


def link_clusters(folder: Path, clustered: list[ClusteredFace], order: dict[str, int]) -> list[Path]:
    """One sub-folder per cluster with a symbolic link per face to its photo; ``order`` numbers the photos."""
    links = []
    for c in clustered:
        sub = folder / f"cluster-{c.cluster:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        link = sub / safe_name(order[c.result.path], c.result.path, f"-face{c.face.index}",
                               Path(c.result.path).suffix)
        link.unlink(missing_ok=True)
        link.symlink_to(Path(c.result.path).resolve())
        links.append(link)
    return links
