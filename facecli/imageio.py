"""Read an image file into an RGB array, or say exactly why not.

Unlike loaders that let broken files through (face_recognition sets PIL's
LOAD_TRUNCATED_IMAGES), a truncated JPEG or PNG is an error here. Every
file is checked from its header before any pixel is decoded, in every
format facecli hands to OpenCV (JPEG, PNG, BMP, TIFF, WebP; anything else
is refused by its signature, so OpenCV's other decoders are never reached):

- its size on disk against ``FACECLI_MAX_BYTES`` (``stat``, before reading);
- its declared width x height against ``FACECLI_MAX_PIXELS``;
- the memory its decoder will need (the output, OpenCV's copy of it into
  numpy, and the decoder's own buffers: a progressive JPEG's coefficients,
  a TIFF strip, a WebP canvas) against 7.5 bytes per allowed pixel;
- for JPEG, its whole marker structure: it must end with an end-of-image
  marker (data after it, such as a motion photo's video, is ignored), hold
  at most ``MAX_SCANS`` scans, and carry at least the entropy-coded bits
  that its declared blocks need (a 10000 x 10000 JPEG of 671 bytes would
  otherwise decode to 300 MB of grey);
- for PNG, its chunk layout; for TIFF, its compression.

EXIF orientation is honoured (OpenCV applies it when decoding).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facecli.errors import FaceCliError, InputError, OutOfMemory

if TYPE_CHECKING:
    import numpy as np

#: Largest image accepted, in pixels (a decompression-bomb guard); FACECLI_MAX_PIXELS overrides it.
MAX_PIXELS = 120_000_000
#: Largest file read, in bytes (checked with stat before reading); FACECLI_MAX_BYTES overrides it.
#: 256 MiB holds any camera's JPEG (a 100 MP one is 30-60 MB) and an uncompressed 8-bit RGB TIFF of 85 MP.
MAX_BYTES = 256 * 1024 * 1024
#: Decoding may use this many bytes per pixel of the pixel limit (900 MB at the default):
#: 6 for an 8-bit BGR image and OpenCV's copy of it into numpy, the rest for the decoder's buffers.
DECODE_BYTES_PER_PIXEL = 7.5
#: Most scans a JPEG may hold. libjpeg's progressive scripts write 10 (colour), 6 (grey) or
#: 18 (CMYK); each scan costs a pass over the image's blocks even when it carries no data.
MAX_SCANS = 64

_SIGNATURES = {
    b"\xff\xd8\xff": "jpeg",
    b"\x89PNG\r\n\x1a\n": "png",
    b"BM": "bmp",
    b"RIFF": "webp",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
}


def _limit(variable: str, default: int) -> int:
    """A positive whole-number limit from the environment, or its default."""
    raw = os.environ.get(variable)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise FaceCliError(variable, f"{raw!r} is not a positive whole number")
    return value


def max_pixels() -> int:
    return _limit("FACECLI_MAX_PIXELS", MAX_PIXELS)


def max_bytes() -> int:
    return _limit("FACECLI_MAX_BYTES", MAX_BYTES)


def read_bytes(path: str) -> bytes:
    """The file's bytes, refusing what is not a readable, non-empty regular file within the byte limit.

    The size is checked with ``stat`` before anything is read, and again on
    the opened file (which is opened non-blocking, so a FIFO swapped in after
    the check cannot hang the read), and no more than the limit is ever read.
    """
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
    limit = max_bytes()
    _check_size(path, st.st_size, limit)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise InputError(path, "not a regular file")
        _check_size(path, st.st_size, limit)
        try:
            data = fh.read(st.st_size + 1)  # one byte more: a file that grew since fstat is noticed
        except OSError as exc:
            raise InputError(path, exc.strerror or str(exc)) from None
    if len(data) != st.st_size:
        raise InputError(path, "changed while it was being read")
    return data


def _check_size(path: str, size: int, limit: int) -> None:
    if size == 0:
        raise InputError(path, "empty file")
    if size > limit:
        raise InputError(path, f"{size} bytes is above the limit of {limit} (FACECLI_MAX_BYTES)")


def image_format(data: bytes) -> str | None:
    for sig, name in _SIGNATURES.items():
        if data.startswith(sig):
            if name == "webp" and data[8:12] != b"WEBP":
                return None
            return name
    return None


@dataclass(frozen=True)
class Header:
    """What a file declares, read without decoding: its size and what decoding it costs."""

    format: str
    width: int
    height: int
    #: bytes the decoder needs besides its 3-byte-per-pixel output (coefficients, strips, canvases)
    decoder_bytes: int = 0
    #: libjpeg can decode this file at 1/2, 1/4 or 1/8 of its size (a JPEG with no other catch)
    reducible: bool = False


def declared_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """(width, height) as the header declares it, or None when the header cannot be read."""
    try:
        header = read_header(data, "image", fmt)
    except InputError:
        return None
    return header.width, header.height


def read_header(data: bytes, name: str, fmt: str | None = None) -> Header:
    """The header of an image file, after the structural checks of its format (see the module doc)."""
    fmt = fmt or image_format(data)
    if fmt is None:
        raise InputError(name, "not an image (unknown file signature)")
    try:
        return _READERS[fmt](data, name)
    except (struct.error, IndexError):
        raise InputError(name, f"truncated or corrupt {fmt.upper()} header") from None


# -- JPEG ------------------------------------------------------------------------------------
_JPEG_FRAMES = {0xC0: "baseline", 0xC1: "sequential", 0xC2: "progressive", 0xC3: "lossless"}
_JPEG_UNSUPPORTED = {0xC5: "hierarchical", 0xC6: "hierarchical", 0xC7: "hierarchical",
                     0xC9: "arithmetic-coded", 0xCA: "arithmetic-coded", 0xCB: "arithmetic-coded",
                     0xCD: "arithmetic-coded", 0xCE: "arithmetic-coded", 0xCF: "arithmetic-coded"}
# the next marker: the last 0xFF of a run (the others are fill bytes), then a code other than 0x00
# (0xFF 0x00 is a data byte). One byte of look-behind, never a variable-length run: linear time.
_JPEG_NEXT = re.compile(rb"\xff[^\x00\xff]")
# the marker that ends a scan: inside entropy-coded data 0xFF also precedes restart markers
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
#: Most marker segments walked in a JPEG (real files have tens; a progressive one, up to about 150).
_JPEG_MAX_SEGMENTS = 4096


def _read_jpeg(data: bytes, name: str) -> Header:
    """Walk every marker segment and scan of a JPEG up to its end-of-image marker.

    Why each check: a file cut short ends inside a segment or a scan; each
    scan costs libjpeg a pass over its components' blocks, even an empty one
    (issue 15: 20 000 empty scans, 20 s); and libjpeg fills blocks the data does not
    reach with grey, so a file with too few bits for its blocks is a bomb,
    not a photo. The floor is exact for Huffman coding: every code is at
    least 1 bit, so a sequential JPEG spends at least 2 bits per 8x8 block
    (a DC code and an end-of-block code), a progressive one at least 1 (its
    DC scans code every block; AC scans can skip runs of blocks in one code),
    and a lossless one at least 1 per sample. Arithmetic coding has no such
    floor (a likely symbol costs a small fraction of a bit), and hierarchical
    JPEG is not decoded by libjpeg: both are refused.
    """
    n = len(data)
    i = 2
    frame: tuple[str, int, int, list[tuple[int, int, int]]] | None = None
    blocks: dict[int, int] = {}
    scans = entropy = 0
    for _ in range(_JPEG_MAX_SEGMENTS):
        found = _JPEG_NEXT.search(data, i)  # as libjpeg reads: bytes between segments are skipped
        if found is None:
            raise InputError(name, "truncated JPEG (no end-of-image marker)")
        i = found.end()
        marker = data[i - 1]
        if marker == 0xD9:
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue
        if marker == 0xD8:
            raise InputError(name, "corrupt JPEG (a second start-of-image marker)")
        if i + 2 > n:
            raise InputError(name, "truncated JPEG (ends inside a marker)")
        length = data[i] << 8 | data[i + 1]
        end = i + length
        if length < 2 or end > n:
            raise InputError(name, "truncated JPEG (a segment runs past the end of the file)")
        if marker in _JPEG_UNSUPPORTED:
            raise InputError(name, f"{_JPEG_UNSUPPORTED[marker]} JPEG is not supported (re-encode it as a "
                                   "baseline or progressive JPEG)")
        if marker in _JPEG_FRAMES:
            if frame is not None:
                raise InputError(name, "corrupt JPEG (two frame headers)")
            height, width, ncomp = struct.unpack(">HHB", data[i + 3:i + 8])
            if ncomp == 0 or length < 8 + 3 * ncomp:
                raise InputError(name, "corrupt JPEG (bad frame header)")
            comps = [(data[i + 8 + 3 * k], data[i + 9 + 3 * k] >> 4, data[i + 9 + 3 * k] & 15) for k in range(ncomp)]
            if any(h == 0 or v == 0 for _, h, v in comps):
                raise InputError(name, "corrupt JPEG (a component has no sampling factor)")
            if width == 0 or height == 0:
                raise InputError(name, f"declares an empty {width}x{height} image")
            frame = (_JPEG_FRAMES[marker], width, height, comps)
            hmax, vmax = max(h for _, h, _ in comps), max(v for _, _, v in comps)
            unit = 1 if frame[0] == "lossless" else 8
            for cid, h, v in comps:
                cw, ch = -(-width * h // hmax), -(-height * v // vmax)
                blocks[cid] = -(-cw // unit) * -(-ch // unit)
        elif marker == 0xDA:
            if frame is None:
                raise InputError(name, "corrupt JPEG (a scan before the frame header)")
            scans += 1
            if scans > MAX_SCANS:
                raise InputError(name, f"more than {MAX_SCANS} scans (each costs a pass over the image; libjpeg's "
                                       "progressive scripts write 6 to 18)")
            found = _JPEG_MARKER.search(data, end)
            if found is None:
                raise InputError(name, "truncated JPEG (no end-of-image marker)")
            entropy += found.start() - end
            end = found.start()
        i = end
    else:
        raise InputError(name, f"corrupt JPEG (more than {_JPEG_MAX_SEGMENTS} marker segments)")
    if frame is None:
        raise InputError(name, "corrupt JPEG (no frame header)")
    kind, width, height, comps = frame
    floor_bits = sum(blocks.values()) * (2 if kind in ("baseline", "sequential") else 1)
    if entropy * 8 < floor_bits:
        raise InputError(name, f"declares {width}x{height} pixels but carries {entropy} bytes of image data, "
                               f"fewer than the {-(-floor_bits // 8)} any {kind} JPEG of that size needs")
    # libjpeg keeps every coefficient (2 bytes x 64 per block; a lossless one, 2 bytes per sample)
    # when the image comes in several scans
    whole_image = (2 if kind == "lossless" else 128) * sum(blocks.values()) if kind == "progressive" or scans > 1 else 0
    return Header("jpeg", width, height, whole_image, reducible=kind != "lossless")


# -- PNG -------------------------------------------------------------------------------------
#: Most chunks walked: encoders write image data in chunks of 8 KB or more (32 768 of them in a
#: 256 MB file); a file of empty chunks would otherwise keep this walk busy for seconds.
_PNG_MAX_CHUNKS = 1 << 18


def _read_png(data: bytes, name: str) -> Header:
    """IHDR's size, after walking the chunk headers: every chunk must fit in the file and IEND must come.

    libpng can spend seconds on a chunk whose length field points far past
    the end of a small file; checking the layout first costs microseconds.
    An animated PNG is decoded on a canvas of its own (two 4-byte frames).
    """
    if data[12:16] != b"IHDR":
        raise InputError(name, "corrupt PNG (no IHDR chunk)")
    width, height = struct.unpack(">II", data[16:24])
    animated = False
    pos = 8
    for _ in range(_PNG_MAX_CHUNKS):
        if pos + 12 > len(data):
            raise InputError(name, "truncated PNG (no IEND chunk)")
        length, kind = struct.unpack_from(">I4s", data, pos)
        if pos + 12 + length > len(data):
            raise InputError(name, f"corrupt or truncated PNG (chunk {kind!r} runs past the end of the file)")
        if kind == b"IEND":
            break
        if kind == b"acTL":
            animated = True
        pos += 12 + length
    else:
        raise InputError(name, f"corrupt PNG (more than {_PNG_MAX_CHUNKS} chunks)")
    return Header("png", width, height, 8 * width * height if animated else 0)


# -- BMP -------------------------------------------------------------------------------------
def _read_bmp(data: bytes, name: str) -> Header:
    """The size from the DIB header: the OS/2 one (12 bytes) or a Windows one (40 bytes or more)."""
    (size,) = struct.unpack("<I", data[14:18])
    if size == 12:
        width, height = struct.unpack("<HH", data[18:22])
    elif size >= 40:
        width, height = struct.unpack("<ii", data[18:26])
        height = abs(height)  # negative: stored top-down
    else:
        raise InputError(name, f"unsupported BMP header ({size} bytes)")
    if width <= 0 or height == 0:
        raise InputError(name, f"declares an empty or negative {width}x{height} image")
    return Header("bmp", width, height)


# -- TIFF ------------------------------------------------------------------------------------
#: none, LZW, Adobe Deflate, Deflate, PackBits. Not JPEG-in-TIFF: each strip would be a JPEG of
#: its own, outside the JPEG checks above.
_TIFF_COMPRESSIONS = {1: "none", 5: "LZW", 8: "Deflate", 32946: "Deflate", 32773: "PackBits"}
_TIFF_TAGS = {256: "width", 257: "height", 258: "bits", 259: "compression", 277: "samples", 278: "rows",
              322: "tile_width", 323: "tile_height"}


def _read_tiff(data: bytes, name: str) -> Header:
    """The first image directory (the one OpenCV decodes): size, compression and strip or tile buffer."""
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd:ifd + 2])
    if ifd < 8 or ifd + 2 + 12 * count > len(data):
        raise InputError(name, "truncated or corrupt TIFF (the image directory runs past the end of the file)")
    tags: dict[str, int] = {}
    for k in range(count):
        entry = data[ifd + 2 + 12 * k:ifd + 14 + 12 * k]
        tag, kind, n = struct.unpack(order + "HHI", entry[:8])
        if tag not in _TIFF_TAGS:
            continue
        if _TIFF_TAGS[tag] in tags:
            raise InputError(name, f"corrupt TIFF (tag {tag} appears twice)")
        if kind not in (3, 4):
            raise InputError(name, f"corrupt TIFF (tag {tag} has type {kind})")
        size = 2 if kind == 3 else 4  # SHORT or LONG; the first value, in the entry or at its offset
        at = ifd + 10 + 12 * k if n * size <= 4 else struct.unpack(order + "I", entry[8:12])[0]
        (value,) = struct.unpack_from(order + ("H" if kind == 3 else "I"), data, at)
        tags[_TIFF_TAGS[tag]] = value
    if "width" not in tags or "height" not in tags:
        raise InputError(name, "corrupt TIFF (no image width or length)")
    width, height = tags["width"], tags["height"]
    if width == 0 or height == 0:
        raise InputError(name, f"declares an empty {width}x{height} image")
    compression = tags.get("compression", 1)
    if compression not in _TIFF_COMPRESSIONS:
        raise InputError(name, f"TIFF compression {compression} is not supported (use none, LZW, Deflate or "
                               "PackBits, or convert it to JPEG or PNG)")
    if "tile_width" in tags and "tile_height" in tags:
        tile_w, tile_h = tags["tile_width"], tags["tile_height"]
    else:
        tile_w, tile_h = width, min(height, tags.get("rows", height) or height)
    if tile_w == 0 or tile_h == 0:
        raise InputError(name, "corrupt TIFF (empty strips or tiles)")
    pieces = -(-width // tile_w) * -(-height // tile_h)
    pixel = max(4, tags.get("samples", 1) * -(-tags.get("bits", 1) // 8))
    # one strip or tile decoded at a time (OpenCV's path, or libtiff's RGBA one), and the offset tables
    return Header("tiff", width, height, tile_w * tile_h * pixel + 16 * pieces)


# -- WebP ------------------------------------------------------------------------------------
def _read_webp(data: bytes, name: str) -> Header:
    """The size of the bitstream (VP8 lossy or VP8L lossless) and of the extended (VP8X) canvas.

    libwebp's lossless decoder keeps a 4-byte ARGB image, and an animation
    is composed on two 4-byte canvases.
    """
    kind = data[12:16]
    if kind == b"VP8X":
        flags = data[20]
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        animated = bool(flags & 0x02)
        pos = 30
        for _ in range(16):  # the still image (after ICCP, ALPH...) must not be larger than the canvas
            if pos + 8 > len(data):
                break
            chunk, size = struct.unpack_from("<4sI", data, pos)
            if chunk in (b"VP8 ", b"VP8L"):
                inner = _webp_bitstream(chunk, data[pos + 8:pos + 8 + size], name)
                width, height = max(width, inner[0]), max(height, inner[1])
                break
            pos += 8 + size + (size & 1)
        return Header("webp", width, height, (8 if animated else 4) * width * height)
    if kind in (b"VP8 ", b"VP8L"):
        width, height = _webp_bitstream(kind, data[20:], name)
        return Header("webp", width, height, 4 * width * height)
    raise InputError(name, f"unsupported WebP chunk {kind!r}")


def _webp_bitstream(kind: bytes, payload: bytes, name: str) -> tuple[int, int]:
    if kind == b"VP8L":
        if payload[0] != 0x2F:
            raise InputError(name, "corrupt WebP (bad lossless signature)")
        (bits,) = struct.unpack("<I", payload[1:5])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if payload[3:6] != b"\x9d\x01\x2a":
        raise InputError(name, "corrupt WebP (bad key frame)")
    width, height = struct.unpack("<HH", payload[6:10])
    return width & 0x3FFF, height & 0x3FFF


_READERS = {"jpeg": _read_jpeg, "png": _read_png, "bmp": _read_bmp, "tiff": _read_tiff, "webp": _read_webp}


# -- decoding --------------------------------------------------------------------------------
def jpeg_shrink(data: bytes, at_least: int) -> int:
    """The largest JPEG decoding scale 1/2, 1/4 or 1/8 that keeps the longest side >= ``at_least``.

    libjpeg can decode straight to a reduced size by dropping DCT
    coefficients: several times faster than decoding in full and then
    downscaling. Other formats, and JPEGs already small, decode at 1.
    """
    if image_format(data) != "jpeg":
        return 1
    try:
        header = read_header(data, "image", "jpeg")
    except InputError:
        return 1
    if not header.reducible:
        return 1
    longest = max(header.width, header.height)
    for factor in (8, 4, 2):
        if longest // factor >= at_least:
            return factor
    return 1


def check(data: bytes, name: str, shrink: int = 1) -> Header:
    """The header of ``data``, refused when its size or its decoding cost is above the limits."""
    header = read_header(data, name)
    w, h = header.width, header.height
    if w == 0 or h == 0:
        raise InputError(name, f"declares an empty {w}x{h} image")
    limit = max_pixels()
    if w * h > limit:
        raise InputError(name, f"{w}x{h} pixels is above the limit of {limit} (FACECLI_MAX_PIXELS)")
    factor = shrink if header.reducible else 1
    output = 3 * -(-w // factor) * -(-h // factor)
    # the decoder's output and buffers, then OpenCV's copy of the output into numpy
    need = len(data) + max(output + header.decoder_bytes, 2 * output)
    budget = int(DECODE_BYTES_PER_PIXEL * limit)
    if need > budget:
        raise InputError(name, f"decoding this {w}x{h} {header.format.upper()} would take about "
                               f"{need // 1_000_000} MB, above the {budget // 1_000_000} MB allowed "
                               f"({DECODE_BYTES_PER_PIXEL} bytes per pixel of FACECLI_MAX_PIXELS)")
    return header


def decode(data: bytes, name: str, shrink: int = 1) -> np.ndarray:
    """Decode image bytes to RGB uint8 (H, W, 3); ``name`` is used in errors.

    ``shrink`` (2, 4 or 8, JPEG only) decodes at that fraction of the size.
    """
    # numpy and OpenCV: loaded only by the commands that detect or embed
    import cv2
    import numpy as np

    header = check(data, name, shrink)
    fmt = header.format
    flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}[shrink if header.reducible else 1]
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    except cv2.error as exc:
        error = OutOfMemory if exc.code == cv2.Error.StsNoMem else InputError
        raise error(name, f"cannot decode {fmt}: {cv_reason(exc)}") from None
    if image is None or image.size == 0:
        raise InputError(name, f"cannot decode this {fmt} file (corrupt or unsupported)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)  # in place: no second copy of a large image


def cv_reason(exc: Exception) -> str:
    """OpenCV's multi-line error as one line: ``(-4:Insufficient memory) Failed to allocate ...``."""
    text = " ".join(str(exc).split())
    found = re.search(r"\(-?\d+:[^)]*\).*", text)
    return (found.group(0) if found else text)[:300]


def read_image(path: str) -> np.ndarray:
    """Read and decode ``path`` into an RGB uint8 array."""
    return decode(read_bytes(path), path)
