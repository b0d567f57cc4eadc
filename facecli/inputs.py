"""Which files a command reads: image suffixes, folders searched recursively, people folders, stdin.

Light on purpose (no numpy, no OpenCV): the CLI expands its arguments here
before any model is loaded.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from facecli.errors import InputError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _hidden(path: Path, root: Path) -> bool:
    """Whether a file under ``root`` is hidden, or inside a hidden folder, there (its name or a folder's starts with
    a dot): macOS's ``._photo.jpg`` metadata, ``.thumbnails/``, ``.git/`` are not photos to read."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def images_in(folder: Path) -> list[str]:
    """The image files under ``folder``, recursively, in a stable (sorted) order; hidden ones are skipped, as
    ``ls`` and shell globs skip them (named on the command line, a hidden file is read)."""
    return [str(f) for f in sorted(folder.rglob("*")) if f.is_file() and is_image_name(f) and not _hidden(f, folder)]


def folder_images(folder: str) -> list[str] | InputError:
    """The image files under ``folder`` (recursively, sorted), or the error saying it has none."""
    found = images_in(Path(folder))
    return found or InputError(folder, "no image files in this folder (searched recursively)")


#: The longest line of stdin taken for a path (Linux's PATH_MAX is 4096 bytes); a longer one is reported and skipped
MAX_LINE = 1 << 16


def stdin_paths() -> Iterator[str | InputError]:
    """The paths listed on stdin, one per line (blank lines skipped), each as soon as its line is complete; a line
    past ``MAX_LINE`` bytes is no path: an ``InputError`` in its place, its bytes dropped as they arrive.

    Read from the file descriptor with ``os.read``, not through Python's
    buffered ``sys.stdin``: a producer that keeps the pipe open (``tail -f``,
    ``inotifywait -m``) gets each path processed as it arrives, and a reader
    blocked here holds no lock that could stall the interpreter's exit. Bytes
    become paths as the command line's do (``os.fsdecode``). Each byte is
    copied once (a 100 MB line took 103 s when each read was joined to all
    that came before it).
    """
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # stdin replaced by an object without a descriptor
        yield from (line.rstrip("\r\n") for line in sys.stdin if line.strip())
        return
    pending = bytearray()
    overlong = 0  # bytes of the current line dropped so far
    while chunk := os.read(fd, 1 << 16):
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            if overlong or len(pending) + end - start > MAX_LINE:
                yield _not_a_path(overlong + len(pending) + end - start)
            else:
                pending += chunk[start:end]
                if pending.strip():
                    yield os.fsdecode(bytes(pending.rstrip(b"\r")))
            pending.clear()
            overlong = 0
            start = end + 1
        pending += chunk[start:]
        if len(pending) > MAX_LINE:
            overlong += len(pending)
            pending.clear()
    if overlong:
        yield _not_a_path(overlong + len(pending))
    elif pending.strip():
        yield os.fsdecode(bytes(pending.rstrip(b"\r")))


def _not_a_path(size: int) -> InputError:
    return InputError(f"a line of {size} bytes on stdin", f"not a path (paths are at most {MAX_LINE} bytes)")


def expand(args: Iterable[str], folders: bool = True) -> Iterator[str | InputError]:
    """The inputs named by command-line arguments, lazily: '-' is the paths on stdin, and (with ``folders``)
    a folder is the image files under it, or an ``InputError`` when it has none.

    Folders are expanded only when named on the command line: a line of stdin is one image path,
    taken as it is (``find photos`` lists the folders as well as their files).
    """
    for arg in args:
        if arg == "-":
            yield from stdin_paths()
        elif folders and os.path.isdir(arg):
            found = folder_images(arg)
            if isinstance(found, InputError):
                yield found
            else:
                yield from found
        else:
            yield arg


def person_from_filename(path: Path) -> str:
    """``alice.jpg``, ``alice_2.jpg`` and ``alice-03.png`` all belong to ``alice``."""
    return re.sub(r"[_-]\d+$", "", path.stem) or path.stem


def scan_people_dir(root: Path) -> list[tuple[str, str]]:
    """(name, path) pairs from a folder of per-person sub-folders or of named files."""
    if not root.is_dir():
        raise InputError(str(root), "not a directory")
    pairs = []
    for entry in sorted(e for e in root.iterdir() if not _hidden(e, root)):
        if entry.is_dir():
            pairs += [(entry.name, str(p)) for p in sorted(entry.iterdir())
                      if p.is_file() and is_image_name(p) and not _hidden(p, entry)]
        elif is_image_name(entry):
            pairs.append((person_from_filename(entry), str(entry)))
    if not pairs:
        raise InputError(str(root), "no images found (expected person folders or person-named files)")
    return pairs
