"""Hostile image files, built from bytes or from the real photos (nothing binary is committed).

Each builder returns the file's bytes. They reproduce the resource bombs of
issue 15: small files declaring hundreds of megapixels in every format
facecli hands to OpenCV, a progressive JPEG made of empty scans, and a JPEG
whose entropy data is far too small for its declared size.
"""

from __future__ import annotations

import struct
import zlib

#: the sides of the largest image below the 120 MP limit (119.7 MP)
LIMIT_SIDE = (12600, 9500)


# -- BMP -------------------------------------------------------------------------------------
def _bmp(width: int, height: int, bpp: int, compression: int, palette: bytes, pixels: bytes,
         declared_image_size: int = 0) -> bytes:
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bpp, compression, declared_image_size,
                       2835, 2835, len(palette) // 4, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels


def rle_bmp(width: int = 16000, height: int = 15000, lines: int = 4) -> bytes:
    """An RLE8 BMP of about 600 bytes declaring ``width`` x ``height`` (240 MP by default).

    A few lines of 255-pixel runs, then end-of-bitmap: the decoder must
    allocate (and fill) the whole declared image.
    """
    palette = bytes([0, 0, 0, 0, 200, 180, 160, 0])
    line = b"\xff\x01" * (width // 255) + b"\x00\x00"
    data = line * lines + b"\x00\x01"
    return _bmp(width, height, 8, 1, palette, data, len(data))


def huge_bmp(width: int = 32000, height: int = 32000) -> bytes:
    """A 24-bit BMP header declaring ``width`` x ``height`` (1 GP) followed by one row of pixels."""
    return _bmp(width, height, 24, 0, b"", b"\x80" * (width * 3))


# -- TIFF ------------------------------------------------------------------------------------
def tiff(width: int, height: int, strip: bytes, compression: int, samples: int = 3, bits: int = 8,
         rows_per_strip: int | None = None, photometric: int = 2) -> bytes:
    """A little-endian TIFF with one strip; ``strip`` is the (compressed) strip data."""
    entries = [
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, bits), (259, 3, 1, compression),
        (262, 3, 1, photometric), (273, 4, 1, 0), (277, 3, 1, samples),
        (278, 4, 1, rows_per_strip or height), (279, 4, 1, len(strip)), (284, 3, 1, 1),
    ]
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * len(entries) + 4
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 273:
            value = data_offset
        ifd += struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3
                                                        else struct.pack("<I", value))
    return b"II*\x00" + struct.pack("<I", ifd_offset) + ifd + b"\x00\x00\x00\x00" + strip


def deflate_zeros(size: int) -> bytes:
    """``size`` zero bytes, zlib-compressed (about 1/1000 of the size), without holding them in memory."""
    comp = zlib.compressobj(9)
    chunk = bytes(1 << 22)
    out = []
    left = size
    while left:
        n = min(left, len(chunk))
        out.append(comp.compress(chunk[:n] if n < len(chunk) else chunk))
        left -= n
    out.append(comp.flush())
    return b"".join(out)


def tiff_bomb(width: int = 15000, height: int = 15000) -> bytes:
    """A Deflate TIFF of about 650 KB declaring ``width`` x ``height`` RGB (225 MP by default)."""
    return tiff(width, height, deflate_zeros(width * height * 3), compression=8)


# -- WebP ------------------------------------------------------------------------------------
def _riff(chunks: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks


def _chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


class _Bits:
    """Little-endian bit writer (VP8L's order)."""

    def __init__(self) -> None:
        self.value = 0
        self.n = 0

    def put(self, value: int, width: int) -> None:
        self.value |= value << self.n
        self.n += width

    def bytes(self) -> bytes:
        return self.value.to_bytes((self.n + 7) // 8, "little")


def vp8l_flat(width: int = 16384, height: int = 16384) -> bytes:
    """A VP8L bitstream of one colour: every prefix code has a single symbol, so each pixel costs 0 bits."""
    bits = _Bits()
    bits.put(0x2F, 8)
    bits.put(width - 1, 14)
    bits.put(height - 1, 14)
    bits.put(0, 1)  # alpha hint
    bits.put(0, 3)  # version
    bits.put(0, 1)  # no transform
    bits.put(0, 1)  # no colour cache
    bits.put(0, 1)  # no meta prefix codes
    for _ in range(5):  # green, red, blue, alpha, distance: "simple" codes of one 1-bit symbol (0)
        bits.put(1, 1)
        bits.put(0, 1)
        bits.put(0, 1)
        bits.put(0, 1)
    return bits.bytes()


def webp_lossless_bomb(width: int = 16384, height: int = 16384) -> bytes:
    """A 38-byte WebP declaring ``width`` x ``height`` (268 MP by default), lossless.

    The bitstream is padded to the 32 bytes OpenCV wants before it looks at a WebP.
    """
    return _riff(_chunk(b"VP8L", vp8l_flat(width, height) + bytes(10)))


def webp_extended_bomb(width: int = 16384, height: int = 16384) -> bytes:
    """The same image inside the extended (VP8X) container, which declares a canvas of its own."""
    vp8x = struct.pack("<B3x", 0) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return _riff(_chunk(b"VP8X", vp8x) + _chunk(b"VP8L", vp8l_flat(width, height)))


def webp_lossy_declaring(webp: bytes, width: int = 16383, height: int = 16383) -> bytes:
    """A real lossy (VP8) WebP whose frame header is patched to declare ``width`` x ``height``."""
    i = webp.index(b"\x9d\x01\x2a") + 3
    return webp[:i] + struct.pack("<HH", width, height) + webp[i + 4:]


# -- JPEG ------------------------------------------------------------------------------------
def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each marker segment up to the first SOS (``end`` excludes the payload after SOS)."""
    out = []
    i = 2
    while i < len(data):
        marker = data[i + 1]
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        out.append((marker, i, i + 2 + length))
        if marker == 0xDA:
            break
        i += 2 + length
    return out


def empty_scans(jpeg: bytes, scans: int = 20_000) -> bytes:
    """A real progressive JPEG followed by ``scans`` empty scans, each over every component.

    Each scan carries no entropy data, yet libjpeg walks every block of the
    image for it: CPU time grows with scans x blocks while the file stays small.
    """
    end = jpeg.rindex(b"\xff\xd9")
    sof = next((s, e) for m, s, e in jpeg_segments(jpeg) if m == 0xC2)
    ncomp = jpeg[sof[0] + 9]
    ids = [jpeg[sof[0] + 10 + 3 * k] for k in range(ncomp)]
    body = bytes([ncomp]) + b"".join(bytes([c, 0x00]) for c in ids) + bytes([0, 0, 0x01])  # DC, Ah 0 Al 1
    sos = b"\xff\xda" + struct.pack(">H", 2 + len(body)) + body
    return jpeg[:end] + sos * scans + b"\xff\xd9"


def thin_jpeg(jpeg: bytes, width: int = 10000, height: int = 10000, body: int = 671) -> bytes:
    """A real baseline JPEG's headers declaring ``width`` x ``height``, with ``body`` bytes of entropy data.

    libjpeg decodes the whole declared size, filling what the data does not
    cover with grey: a 100 MP image from a file of about 1 KB.
    """
    segs = jpeg_segments(jpeg)
    sof = next(s for m, s, _ in segs if m == 0xC0)
    patched = bytearray(jpeg)
    patched[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    sos_end = segs[-1][2]
    scan = bytes(patched[sos_end:sos_end + body])
    while scan.endswith(b"\xff"):  # never end on half a marker
        scan = scan[:-1]
    return bytes(patched[:sos_end]) + scan + b"\xff\xd9"


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", 2 + len(payload)) + payload


def _sos(ids: list[int], ss: int, se: int, ah: int, al: int) -> bytes:
    return _segment(0xDA, bytes([len(ids)]) + b"".join(bytes([c, 0x00]) for c in ids) + bytes([ss, se, ah << 4 | al]))


def flat_jpeg(width: int, height: int, colour: bool = False, progressive: bool = False, scans: int = 1,
              restart: int = 0, trim: int = 0, subsampled: bool = True) -> bytes:
    """A valid flat-grey JPEG at the least entropy-coded data any Huffman JPEG of its size can have.

    Its Huffman tables hold one 1-bit code each, so a block costs 2 bits
    (sequential: a DC code and an end-of-block code) or 1 bit (progressive:
    its DC scan). ``scans`` - 1 empty AC-refinement scans follow a
    progressive image's DC scan, ``restart`` sets a restart interval (in
    MCUs, with the markers written), and ``trim`` drops that many bytes of
    data, making it just too small. A colour one is 4:2:0 unless not ``subsampled`` (4:4:4).
    """
    big = colour and subsampled
    comps = [(1, 2, 2) if big else (1, 1, 1), (2, 1, 1), (3, 1, 1)] if colour else [(1, 1, 1)]
    mcu = 16 if big else 8
    mcus = -(-width // mcu) * -(-height // mcu)
    per_mcu = (6 if big else 3) if colour else 1
    bits_per_block = 1 if progressive else 2
    head = b"\xff\xd8" + _segment(0xDB, b"\x00" + b"\x01" * 64)
    head += _segment(0xC2 if progressive else 0xC0, struct.pack(">BHHB", 8, height, width, len(comps))
                     + b"".join(bytes([c, h << 4 | v, 0]) for c, h, v in comps))
    one_code = bytes([1] + [0] * 15) + b"\x00"  # one symbol, 0, with a 1-bit code
    head += _segment(0xC4, b"\x00" + one_code + b"\x10" + one_code)
    if restart:
        head += _segment(0xDD, struct.pack(">H", restart))
    ids = [c for c, _, _ in comps]
    if restart:
        chunks = [bytes(-(-restart * per_mcu * bits_per_block // 8)) for _ in range(-(-mcus // restart))]
        data = b"".join(chunk + bytes([0xFF, 0xD0 + k % 8]) for k, chunk in enumerate(chunks[:-1])) + chunks[-1]
    else:
        data = bytes(-(-mcus * per_mcu * bits_per_block // 8))
    body = _sos(ids, 0, 0 if progressive else 63, 0, 0) + data[:len(data) - trim]
    for _ in range(scans - 1):
        body += _sos(ids[:1], 1, 63, 1, 0)
    return head + body + b"\xff\xd9"


# -- PNG -------------------------------------------------------------------------------------
def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def flat_png(width: int, height: int, bits: int = 8, channels: int = 3) -> bytes:
    """A black PNG (``channels`` 1, 3 or 4 of ``bits`` 8 or 16): a few hundred KB for 120 MP."""
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    row = bytes(1 + width * channels * bits // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bits, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
