"""Read an image file into an RGB array, or say exactly why not.

Unlike loaders that let broken files through (face_recognition sets PIL's
LOAD_TRUNCATED_IMAGES), a truncated JPEG or PNG is an error here, and a
declared size above ``MAX_PIXELS`` is refused before any pixel is decoded.
EXIF orientation is honoured (OpenCV applies it when decoding).
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from typing import TYPE_CHECKING

from facecli.errors import InputError

if TYPE_CHECKING:
    import numpy as np

#: Largest image accepted, in pixels (a decompression-bomb guard);
#: FACECLI_MAX_PIXELS overrides it.
MAX_PIXELS = int(os.environ.get("FACECLI_MAX_PIXELS", str(120_000_000)))
_SIGNATURES = {
    b"\xff\xd8\xff": "jpeg",
    b"\x89PNG\r\n\x1a\n": "png",
    b"BM": "bmp",
    b"RIFF": "webp",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
}


def read_bytes(path: str) -> bytes:
    """The file's bytes, refusing what is not a readable, non-empty regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(path, "symbolic link loop") from None
        raise InputError(path, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(path, "is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(path, "not a regular file")
    if st.st_size == 0:
        raise InputError(path, "empty file")
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None


def image_format(data: bytes) -> str | None:
    for sig, name in _SIGNATURES.items():
        if data.startswith(sig):
            if name == "webp" and data[8:12] != b"WEBP":
                return None
            return name
    return None


def declared_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """(width, height) from a JPEG or PNG header, without decoding pixels."""
    if fmt == "png" and len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack(">II", data[16:24])
        return w, h
    if fmt == "jpeg":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            (length,) = struct.unpack(">H", data[i + 2:i + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return w, h
            i += 2 + length
    return None


def _check_png_chunks(data: bytes, name: str) -> None:
    """Walk the PNG chunk headers: every chunk must fit in the file and IEND must come.

    libpng can spend seconds on a chunk whose length field points far past
    the end of a small file; checking the layout first costs microseconds.
    """
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if pos + 12 + length > len(data):
            raise InputError(name, f"corrupt or truncated PNG (chunk {kind!r} runs past the end of the file)")
        if kind == b"IEND":
            return
        pos += 12 + length
    raise InputError(name, "truncated PNG (no IEND chunk)")


def jpeg_shrink(data: bytes, at_least: int) -> int:
    """The largest JPEG decoding scale 1/2, 1/4 or 1/8 that keeps the longest side >= ``at_least``.

    libjpeg can decode straight to a reduced size by dropping DCT
    coefficients: several times faster than decoding in full and then
    downscaling. Other formats, and JPEGs already small, decode at 1.
    """
    if image_format(data) != "jpeg":
        return 1
    size = declared_size(data, "jpeg")
    if size is None:
        return 1
    longest = max(size)
    for factor in (8, 4, 2):
        if longest // factor >= at_least:
            return factor
    return 1


def decode(data: bytes, name: str, shrink: int = 1) -> np.ndarray:
    """Decode image bytes to RGB uint8 (H, W, 3); ``name`` is used in errors.

    ``shrink`` (2, 4 or 8, JPEG only) decodes at that fraction of the size.
    """
    import cv2
    import numpy as np

    fmt = image_format(data)
    if fmt is None:
        raise InputError(name, "not an image (unknown file signature)")
    size = declared_size(data, fmt)
    if size is not None:
        w, h = size
        if w * h > MAX_PIXELS:
            raise InputError(name, f"{w}x{h} pixels is above the limit of {MAX_PIXELS} (FACECLI_MAX_PIXELS)")
        if w == 0 or h == 0:
            raise InputError(name, f"declares an empty {w}x{h} image")
    if fmt == "jpeg" and b"\xff\xd9" not in data[-4096:]:
        raise InputError(name, "truncated JPEG (no end-of-image marker)")
    if fmt == "png":
        _check_png_chunks(data, name)
    try:
        flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                8: cv2.IMREAD_REDUCED_COLOR_8}[shrink if fmt == "jpeg" else 1]
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    except cv2.error as exc:
        raise InputError(name, f"cannot decode {fmt}: {str(exc).strip().splitlines()[-1]}") from None
    if image is None or image.size == 0:
        raise InputError(name, f"cannot decode this {fmt} file (corrupt or unsupported)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: str) -> np.ndarray:
    """Read and decode ``path`` into an RGB uint8 array."""
    return decode(read_bytes(path), path)
