"""Remembering that a file is still the one that was checked or written.

A file's stamp is its size, modification and change times, inode and device.
The change time (ctime) moves on every write and cannot be set back by
ordinary tools (unlike mtime), so an edit after the stamp was taken always
shows. facecli keeps stamps for verified models, cached optimised graphs and
search indexes, and trusts such a file only while its stamp is unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from facecli.errors import FaceCliError
from facecli.private import make_private_dir, write_private


def file_stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, obj: Any) -> bool:
    """Replace ``path`` atomically (no reader sees half a file, nothing is written through a link);
    False when it cannot be written."""
    try:
        make_private_dir(path.parent)
        write_private(path, json.dumps(obj).encode())
        return True
    except (OSError, FaceCliError):
        return False
