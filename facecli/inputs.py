"""Which files a command reads: image suffixes, folders searched recursively, people folders.

Light on purpose (no numpy, no OpenCV): the CLI expands its arguments here
before any model is loaded.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

from facecli.errors import InputError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def images_in(folder: Path) -> list[str]:
    """The image files under ``folder``, recursively, in a stable (sorted) order."""
    return [str(f) for f in sorted(folder.rglob("*")) if f.is_file() and is_image_name(f)]


def image_files(paths: Iterable[str]) -> Iterator[str]:
    """The paths, with each folder replaced by the image files under it; files are kept as given."""
    for p in paths:
        if Path(p).is_dir():
            yield from images_in(Path(p))
        else:
            yield p


def check_person_name(name: str) -> str:
    """A name as it will be printed and stored: non-empty, no surrounding spaces, no control characters."""
    if not name.strip() or name != name.strip():
        raise InputError(repr(name), "a name must be non-empty, without leading or trailing spaces")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        raise InputError(repr(name), "a name cannot hold control or formatting characters")
    return name


def person_from_filename(path: Path) -> str:
    """``alice.jpg``, ``alice_2.jpg`` and ``alice-03.png`` all belong to ``alice``."""
    return re.sub(r"[_-]\d+$", "", path.stem) or path.stem


def scan_people_dir(root: Path) -> list[tuple[str, str]]:
    """(name, path) pairs from a folder of per-person sub-folders or of named files."""
    if not root.is_dir():
        raise InputError(str(root), "not a directory")
    pairs = []
    for entry in sorted(root.iterdir()):
        if entry.is_dir():
            pairs += [(entry.name, str(p)) for p in sorted(entry.iterdir()) if p.is_file() and is_image_name(p)]
        elif is_image_name(entry):
            pairs.append((person_from_filename(entry), str(entry)))
    if not pairs:
        raise InputError(str(root), "no images found (expected person folders or person-named files)")
    return pairs
