"""The files facecli writes beside its results: face crops, annotated pictures, cluster links.

Every name is made here (``<n>-<sanitised stem><suffix>``, unique per input
number; ``find --link``'s ``<sanitised stem>-<hash of the path>``, the same
run after run), free of separators, so no input name can make facecli write
outside the folder it was given; and nothing is written, replaced or deleted
through a link that is already there (``facecli.private``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from facecli.errors import InputError
from facecli.imageio import read_image
from facecli.private import write_private

if TYPE_CHECKING:
    from facecli.values import ClusteredFace, Detection, Face


def make_folder(folder: Path) -> None:
    """Create an output folder (and its parents), or say in one line why not."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(str(folder), f"cannot create the folder: {exc.strerror or exc}") from None


def safe_name(n: int, source: str, suffix: str = "", ext: str = ".png") -> str:
    """``<n>-<sanitised stem><suffix><ext>``: unique per input number, no separators, no leading dot."""
    return f"{n:05d}-{_stem(source)}{suffix}{_ext(ext)}"


def _stem(source: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source).stem)[:80].lstrip(".") or "image"


def _ext(ext: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]", "", ext)[:10]


def write_crop(folder: Path, n: int, source: str, face: Face) -> Path:
    """Save a face's model input crop as ``<n>-<stem>-face<i>.png`` inside ``folder``."""
    # OpenCV: loaded only where pixels are decoded or drawn
    import cv2

    target = folder / safe_name(n, source, f"-face{face.index}")
    _write_png(target, cv2.cvtColor(face.crop, cv2.COLOR_RGB2BGR))
    return target


def write_annotated(folder: Path, n: int, source: str,
                    faces: list[tuple[Detection, str | None, bool | None]]) -> Path:
    """Decode ``source`` again, draw the faces on it (``annotate.draw``) and save it as a PNG in ``folder``."""
    # numpy and OpenCV: loaded only by the commands that detect or embed
    from facecli.cli.annotate import draw

    target = folder / safe_name(n, source)
    _write_png(target, draw(read_image(source), faces))
    return target


def _write_png(target: Path, bgr) -> None:
    """A lossless PNG at ``target``, 0600 (a face is biometric data), never written through a link."""
    # OpenCV: loaded only where pixels are decoded or drawn
    import cv2

    ok, data = cv2.imencode(".png", bgr)
    if not ok:
        raise InputError(str(target), "OpenCV could not encode the picture")
    write_private(target, data.tobytes(), InputError)


def link_clusters(folder: Path, clustered: list[ClusteredFace], order: dict[str, int]) -> list[Path]:
    """One sub-folder per cluster with a symbolic link per face to its photo; ``order`` numbers the photos.

    Sub-folders and links are made here, never followed: a link planted where
    one of them goes is an error, so nothing outside ``folder`` is touched.
    """
    links = []
    for c in clustered:
        sub = _own_subfolder(folder / f"cluster-{c.cluster:04d}")
        link = sub / safe_name(order[c.result.path], c.result.path, f"-face{c.face.index}",
                               Path(c.result.path).suffix)
        _replace_link(link, Path(c.result.path).resolve())
        links.append(link)
    return links


#: The links ``find --link`` makes: ``<stem>-<10 hex of the path's sha256><ext>`` (and an earlier version's
#: ``<5 digits>-<stem><ext>``): only links so named, and yours, are ever removed from a person's folder.
FOUND_LINK = re.compile(r"(.+-[0-9a-f]{10}(\.[A-Za-z0-9.]{0,10})?|[0-9]{5}-.+)")


def link_found(folder: Path, found: list[tuple[str, str]], people: list[str]) -> list[Path]:
    """``folder/<name>/`` per person with a symbolic link to each photo they are in (``find --link``); a person's
    folder name keeps letters of any script but never a separator or a leading dot.

    Each link is named by its photo, so a re-run into the same folder keeps one link per photo; the links of an
    earlier run to photos no longer found for one of ``people`` are removed (links of yours, named as facecli
    names them: nothing else in the folder is touched)."""
    links, kept = [], {}
    for name, path in found:
        sub = _own_subfolder(_person_folder(folder, name))
        link = sub / _found_link_name(path)
        _replace_link(link, Path(path))
        kept.setdefault(sub, set()).add(link.name)
        links.append(link)
    for sub in {_person_folder(folder, name) for name in people} | set(kept):
        _remove_stale_links(sub, kept.get(sub, set()))
    return links


def _person_folder(folder: Path, name: str) -> Path:
    return folder / (re.sub(r"[\\/\x00]+", "_", name).lstrip(".") or "person")


def _found_link_name(path: str) -> str:
    """``<sanitised stem>-<10 hex of the path's sha256><ext>``: the same photo, the same name, run after run."""
    return f"{_stem(path)}-{hashlib.sha256(os.fsencode(path)).hexdigest()[:10]}{_ext(Path(path).suffix)}"


def _remove_stale_links(sub: Path, keep: set[str]) -> None:
    """Remove from ``sub`` (a real folder of yours, if there is one) your links named as ``find --link`` names
    them, except ``keep``."""
    try:
        st = os.lstat(sub)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        return
    with os.scandir(sub) as entries:
        for entry in entries:
            if entry.name not in keep and FOUND_LINK.fullmatch(entry.name) and entry.is_symlink() \
                    and entry.stat(follow_symlinks=False).st_uid == os.geteuid():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def write_face_sample(target: Path, paths: list[str], box: list[float]) -> Path | None:
    """A picture of one face, its box widened by half on each side, from the first of ``paths`` that can be
    read (``people --unnamed --crops``); None when none can."""
    # OpenCV: loaded only where pixels are decoded or drawn
    import cv2

    for path in paths:
        try:
            image = read_image(path)
        except InputError:
            continue
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        top, left = max(int(y1 - h / 2), 0), max(int(x1 - w / 2), 0)
        crop = image[top:max(int(y2 + h / 2), top + 1), left:max(int(x2 + w / 2), left + 1)]
        _write_png(target, cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        return target
    return None


def _own_subfolder(sub: Path) -> Path:
    """``sub``, created 0700 if missing; an existing one must be a real folder of yours, not a link."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(sub, 0o700)
    st = os.lstat(sub)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise InputError(str(sub), "is in the way (a link, a file, or someone else's folder): refusing to write "
                                   "into it")
    return sub


def _replace_link(link: Path, target: Path) -> None:
    """Make ``link`` point at ``target``: only a link of your own may be replaced, and atomically."""
    try:
        st = os.lstat(link)
    except FileNotFoundError:
        st = None
    if st is not None and (not stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid()):
        raise InputError(str(link), "is in the way (not a link of yours): refusing to replace it")
    tmp = link.with_name(f".{link.name}.{secrets.token_hex(8)}.tmp")
    os.symlink(target, tmp)
    os.replace(tmp, link)
