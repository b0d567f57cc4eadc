"""Face regions in XMP (Metadata Working Group ``mwg-rs:Regions``): read from sidecars and photos, written to sidecars.

What digiKam, Immich, PiGallery2, Lightroom and exiftool exchange as face tags
is the MWG region list (MWG *Guidelines for Handling Image Metadata* 2.0,
section 5.9): each region a ``Type`` (Face, Pet, Focus, BarCode), a ``Name`` and
an ``Area`` whose ``stArea:x``/``stArea:y`` are the normalised *centre* and
``stArea:w``/``stArea:h`` the normalised size, beside ``AppliedToDimensions``
(``stDim:w``, ``stDim:h``, unit ``pixel``). Windows Photo Gallery and older
digiKam wrote ``MP:RegionInfo`` instead (``MPReg:Rectangle``: normalised left,
top, width, height; ``MPReg:PersonDisplayName``); those are read when a source
holds no MWG faces.

**Orientation.** MWG areas are relative to the *stored* pixels, before the
EXIF Orientation is applied: "Region metadata is applied to the stored image.
When applying a rotation by applying Exif Orientation, the rotation must be
applied to the regions as well" (MWG 2.0, 5.9, quoted with its figure by the
test images of github.com/skatsubo/exif-orientation-vs-face-regions). That is
what the readers do: digiKam's ``ItemScanner::commitFaces`` scales a metadata
region to the stored image's size, then ``TagRegion::adjustToOrientation``
turns it by the orientation; PiGallery2's ``MetadataLoader.mapFaces`` swaps
and mirrors the areas by it; Immich turns imported regions by it since pull
request 18021 (its issues 12440 and 13740: boxes misplaced on rotated
photos). ``AppliedToDimensions`` is the stored size too (those test images: a
photo of orientation 6 shown 700x840 carries 840x700). facecli's boxes are
in the displayed image (OpenCV applies the EXIF Orientation when decoding),
so this module turns them by the photo's own EXIF Orientation (all eight,
flips included). An orientation another program wrote only into a sidecar
(``tiff:Orientation``) is not what facecli's decoder applies, so it is not
used.

**Where.** facecli writes ``<photo>.<ext>.xmp`` (``IMG_1.jpg.xmp``): the name
digiKam, darktable and Immich read and write, and one that never collides
between ``IMG_1.jpg`` and ``IMG_1.cr2``, unlike Lightroom's ``<stem>.xmp``.
Reading takes it, else ``<stem>.xmp`` (Lightroom's), else the photo's embedded
XMP. The photo itself is never written.

**A user's metadata is never lost.** An existing sidecar keeps every other
tag and every region; facecli adds faces, updates its own (a face over an
existing Face region of the same name, IoU >= 0.5), and never overrides a
face tagged with another name (a conflict, reported). A new sidecar starts as
a copy of the metadata a reader would otherwise have taken (the Lightroom
sidecar, else the photo's embedded XMP), so preferring it hides nothing. A
sidecar that cannot be parsed is an error, and nothing is written.

**Privacy.** Names of people are personal data; the point of an export is
that whoever reads the photo reads them too. So a new sidecar is readable by
exactly those who can read the photo (0644 beside a 0644 photo, 0600 beside
a 0600 one); a replaced one keeps its mode. It is written to a fresh file in
the same folder and renamed into place, never through a symbolic link or
over someone else's file (``private.check_replaceable``).

libexiv2 does the XML, through the ``exiv2`` package (python-exiv2, the
``xmp`` extra), imported on first use.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import stat
import threading
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from facecli.errors import BadValue, FaceCliError, InputError
from facecli.extras import install_hint
from facecli.private import check_replaceable, new_file, publish, read_regular
from facecli.values import SAME_FACE_IOU, iou

if TYPE_CHECKING:
    import exiv2

_REGIONS = "Xmp.mwg-rs.Regions"
_LIST = f"{_REGIONS}/mwg-rs:RegionList"
_DIMS = f"{_REGIONS}/mwg-rs:AppliedToDimensions"
_MP_LIST = "Xmp.MP.RegionInfo/MPRI:Regions"
#: a sidecar is a few kilobytes; darktable's edit history can make one a few megabytes
_SIDECAR_LIMIT = 64 << 20

Box = tuple[float, float, float, float]

#: where the EXIF Orientation takes a normalised point of the stored image in the displayed one
_TO_DISPLAY: dict[int, Callable[[float, float], tuple[float, float]]] = {
    1: lambda u, v: (u, v), 2: lambda u, v: (1 - u, v), 3: lambda u, v: (1 - u, 1 - v),
    4: lambda u, v: (u, 1 - v), 5: lambda u, v: (v, u), 6: lambda u, v: (1 - v, u),
    7: lambda u, v: (1 - v, 1 - u), 8: lambda u, v: (v, 1 - u)}
_INVERSE = {6: 8, 8: 6}  # the other orientations undo themselves


@dataclass(frozen=True)
class Region:
    """A named face: ``box`` is x1, y1, x2, y2 in pixels of the image as displayed (EXIF orientation applied)."""

    name: str
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class WriteReport:
    """What ``write_regions`` did to ``sidecar``: counts of regions added, replaced (a face of the same name
    updated) and kept as they were, and the faces not written because another name holds them ((name, existing
    name)). ``written`` is False when nothing had to change; ``seeded_from`` is the file a new sidecar's other
    metadata was copied from."""

    sidecar: Path
    added: int
    replaced: int
    kept: int
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    written: bool = True
    seeded_from: Path | None = None


@dataclass
class _Stored:
    """A region as stored: its list index (1-based), type, name and normalised area in the stored image."""

    index: int
    kind: str
    name: str
    area: Box | None


def sidecar_path(photo: Path) -> Path:
    """The sidecar facecli writes: ``<photo>.<ext>.xmp`` (digiKam's, darktable's and Immich's name; it never
    collides between two photos of one stem)."""
    return photo.with_name(photo.name + ".xmp")


def _lightroom_path(photo: Path) -> Path:
    return photo.with_suffix(".xmp")


def _exiv2():  # noqa: ANN202 (the module's type)
    try:
        # python-exiv2 (libexiv2, 26 ms to import) is the optional xmp extra
        import exiv2
    except ImportError:
        raise FaceCliError("xmp", f"needs the xmp extra: {install_hint('xmp')}") from None
    return exiv2


class _Collect(logging.Handler):
    """exiv2 reports an XMP packet it cannot parse only in its log (and reads it as empty): collect this
    thread's messages so that the caller can tell."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def _reading(path: Path, what: str) -> Iterator[list[str]]:
    """exiv2's exceptions while reading ``path`` as one InputError; yields the list that collects its log
    messages (``_unparsed`` finds there whether the XMP packet could be parsed)."""
    exiv2 = _exiv2()
    logger = logging.getLogger("exiv2")
    collect = _Collect()
    logger.addHandler(collect)
    try:
        yield collect.messages
    except exiv2.Exiv2Error as exc:
        raise InputError(str(path), f"cannot read the {what}: {exc.message}") from None
    finally:
        logger.removeHandler(collect)


def _unparsed(messages: list[str]) -> str | None:
    """Why exiv2 could not parse an XMP packet (it then reads it as no metadata at all, which a write would
    drop), or None."""
    return next((f"its XMP cannot be parsed ({m})" for m in messages if "XMP" in m), None)


@dataclass
class _Photo:
    """What a photo's own metadata says: its EXIF Orientation, stored size (0 when unknown), embedded XMP."""

    path: Path
    orientation: int
    size: tuple[int, int]
    image: exiv2.Image
    problem: str | None

    @property
    def xmp(self) -> exiv2.XmpData:
        """The embedded XMP: an error only when it is needed (the orientation and size come from EXIF)."""
        if self.problem:
            raise InputError(str(self.path), self.problem)
        return self.image.xmpData()


def _open_photo(photo: Path) -> _Photo:
    exiv2 = _exiv2()
    try:
        st = os.stat(photo)
    except OSError as exc:
        raise InputError(str(photo), f"cannot read it: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(str(photo), "is not a regular file")
    with _reading(photo, "photo") as messages:
        image = exiv2.ImageFactory.open(str(photo.absolute()))  # absolute: never read as an http:// URL
        image.readMetadata()
        found = image.exifData().findKey(exiv2.ExifKey("Exif.Image.Orientation"))
        orientation = found.toInt64() if found != image.exifData().end() else 1
        size = (image.pixelWidth(), image.pixelHeight())
    return _Photo(photo, orientation if orientation in _TO_DISPLAY else 1, size, image, _unparsed(messages))


def _open_sidecar(path: Path) -> tuple[exiv2.Image, bytes]:
    """The parsed sidecar at ``path`` (and its bytes, which the image reads in place)."""
    exiv2 = _exiv2()
    data = read_regular(path, "XMP sidecar", _SIDECAR_LIMIT, InputError)
    with _reading(path, "XMP sidecar") as messages:
        image = exiv2.ImageFactory.open(data)
        if image.imageType() != exiv2.ImageType.xmp:
            raise InputError(str(path), "is not an XMP sidecar")
        image.readMetadata()
    if problem := _unparsed(messages):
        raise InputError(str(path), problem)
    return image, data


def _text(xmp: exiv2.XmpData) -> dict[str, str]:
    return {d.key(): d.toString() for d in xmp}


def _number(text: str | None) -> float | None:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _items(tags: dict[str, str], prefix: str) -> dict[int, dict[str, str]]:
    """The fields of each item of the XMP array ``prefix``, by index: {1: {'mwg-rs:Name': ..., ...}}."""
    items: dict[int, dict[str, str]] = {}
    for key, value in tags.items():
        if key.startswith(prefix + "[") and "]" in key:
            index, _, rest = key[len(prefix) + 1:].partition("]")
            if index.isdigit():
                items.setdefault(int(index), {})[rest.lstrip("/")] = value
    return items


def _mwg_regions(tags: dict[str, str]) -> list[_Stored]:
    regions = []
    for index, item in sorted(_items(tags, _LIST).items()):
        x, y, w, h = (_number(item.get(f"mwg-rs:Area/stArea:{k}")) for k in "xywh")
        unit = item.get("mwg-rs:Area/stArea:unit", "normalized")
        area = None
        if None not in (x, y, w, h) and unit == "normalized" and w > 0 and h > 0:  # a point or circle has no w, h
            area = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
        regions.append(_Stored(index, item.get("mwg-rs:Type", "Face"), item.get("mwg-rs:Name", ""), area))
    return regions


def _mp_regions(tags: dict[str, str]) -> list[_Stored]:
    regions = []
    for index, item in sorted(_items(tags, _MP_LIST).items()):
        numbers = [_number(v) for v in item.get("MPReg:Rectangle", "").split(",")]
        area = None
        if len(numbers) == 4 and None not in numbers and numbers[2] > 0 and numbers[3] > 0:
            x, y, w, h = numbers
            area = (x, y, x + w, y + h)
        regions.append(_Stored(index, "Face", item.get("MPReg:PersonDisplayName", ""), area))
    return regions


def _faces(regions: list[_Stored]) -> list[_Stored]:
    return [r for r in regions if r.kind == "Face" and r.name.strip() and r.area is not None]


def _turn(box: Box, orientation: int) -> Box:
    """A normalised box of the stored image in the displayed one (for the inverse, pass the inverse)."""
    (a, b), (c, d) = _TO_DISPLAY[orientation](box[0], box[1]), _TO_DISPLAY[orientation](box[2], box[3])
    return min(a, c), min(b, d), max(a, c), max(b, d)


def _displayed(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """The displayed size of an image stored at ``size`` (the same call turns a displayed size back)."""
    return (size[1], size[0]) if orientation >= 5 else size


def read_regions(photo: Path) -> tuple[tuple[int, int] | None, list[Region]]:
    """The named faces tagged on ``photo``: from ``<photo>.<ext>.xmp``, else ``<stem>.xmp``, else its embedded
    XMP (the first that holds any), as (displayed width, height) and boxes in pixels of it.

    The size is ``AppliedToDimensions`` turned by the photo's orientation (the photo's own size when there is
    none, as with Microsoft's regions): scale the boxes when the image at hand is another size. Regions of
    other types (Pet, Focus, BarCode), unnamed ones and ones without a rectangle are skipped. (None, []) when no
    source names a face.
    """
    info = _open_photo(photo)
    sources: list[dict[str, str]] = []
    for path in (sidecar_path(photo), _lightroom_path(photo)):
        if path != photo and os.path.lexists(path):
            image, _data = _open_sidecar(path)
            sources.append(_text(image.xmpData()))
    sources.append(_text(info.xmp))
    for tags in sources:
        faces = _faces(_mwg_regions(tags)) or _faces(_mp_regions(tags))
        if not faces:
            continue
        w, h = _number(tags.get(f"{_DIMS}/stDim:w")), _number(tags.get(f"{_DIMS}/stDim:h"))
        pixels = tags.get(f"{_DIMS}/stDim:unit", "pixel") == "pixel" and w and h and w > 0 and h > 0
        stored = (round(w), round(h)) if pixels else info.size
        if not all(stored):
            raise InputError(str(photo), "its size is unknown, so its face regions cannot be placed")
        width, height = _displayed(stored, info.orientation)
        regions = []
        for face in faces:
            x1, y1, x2, y2 = _turn(face.area, info.orientation)
            regions.append(Region(face.name, (x1 * width, y1 * height, x2 * width, y2 * height)))
        return (width, height), regions
    return None, []


def _same_name(a: str, b: str) -> bool:
    return unicodedata.normalize("NFC", a).casefold() == unicodedata.normalize("NFC", b).casefold()


def _normalised(region: Region, size: tuple[int, int], orientation: int) -> Box:
    """``region``'s box as a normalised box of the stored image, clipped to the image."""
    w, h = size
    x1, y1, x2, y2 = region.box
    box = (min(max(x1 / w, 0.0), 1.0), min(max(y1 / h, 0.0), 1.0), min(max(x2 / w, 0.0), 1.0),
           min(max(y2 / h, 0.0), 1.0))
    if not region.name.strip() or not all(math.isfinite(v) for v in region.box) or box[2] <= box[0] \
            or box[3] <= box[1]:
        raise BadValue("region", region, "needs a name and a box of some area inside the image")
    return _turn(box, _INVERSE.get(orientation, orientation))


def _set_area(xmp: exiv2.XmpData, index: int, name: str, area: Box) -> None:
    prefix = f"{_LIST}[{index}]/mwg-rs:"
    xmp[prefix + "Name"] = name
    xmp[prefix + "Type"] = "Face"
    centre = ((area[0] + area[2]) / 2, (area[1] + area[3]) / 2, area[2] - area[0], area[3] - area[1])
    for key, value in zip("xywh", centre):
        xmp[f"{prefix}Area/stArea:{key}"] = f"{value:.6f}"
    xmp[prefix + "Area/stArea:unit"] = "normalized"


def _struct(kind: str = "") -> exiv2.XmpTextValue:
    """An empty XMP structure (or, with ``kind`` "bag", an empty unordered array) to add fields to."""
    exiv2 = _exiv2()
    value = exiv2.XmpTextValue()
    if kind == "bag":
        value.setXmpArrayType(exiv2.XmpValue.XmpArrayType.xaBag)
    else:
        value.setXmpStruct()
    return value


def _merge(xmp: exiv2.XmpData, new: list[tuple[str, Box]],
           stored_size: tuple[int, int]) -> tuple[int, int, int, list[tuple[str, str]]]:
    """Add ``new`` faces (name, normalised stored area) to the region list in ``xmp``: (added, replaced, kept,
    conflicts). A Microsoft face of another name at the same place is a conflict too."""
    tags = _text(xmp)
    existing, microsoft = _mwg_regions(tags), _faces(_mp_regions(tags))
    original = {r.index for r in existing}
    for key, value in ((_REGIONS, _struct()), (_DIMS, _struct()), (_LIST, _struct("bag"))):
        if key not in tags:
            xmp[key] = value
    xmp[f"{_DIMS}/stDim:w"], xmp[f"{_DIMS}/stDim:h"] = str(stored_size[0]), str(stored_size[1])
    xmp[f"{_DIMS}/stDim:unit"] = "pixel"
    added, replaced, conflicts = 0, set(), []
    next_index = max(original, default=0) + 1
    for name, area in new:
        match = next((r for r in existing if r.kind == "Face" and r.area and iou(r.area, area) >= SAME_FACE_IOU),
                     None)
        other = next((r for r in microsoft if iou(r.area, area) >= SAME_FACE_IOU and not _same_name(r.name, name)),
                     None)
        if other is not None or (match is not None and match.name.strip() and not _same_name(match.name, name)):
            conflicts.append((name, (match if other is None else other).name))
        elif match is None:
            _set_area(xmp, next_index, name, area)
            existing.append(_Stored(next_index, "Face", name, area))
            next_index += 1
            added += 1
        else:  # the same person's face, or an unnamed one: named, never overridden
            match.name, match.area = match.name.strip() or name, area
            _set_area(xmp, match.index, match.name, area)
            replaced |= {match.index} & original
    return added, len(replaced), len(original) - len(replaced), conflicts


def _encode(xmp: exiv2.XmpData, target: Path) -> bytes:
    """``xmp`` as a sidecar file's bytes, serialised by libexiv2's own XMP sidecar writer (in memory)."""
    exiv2 = _exiv2()
    try:
        image = exiv2.ImageFactory.create(exiv2.ImageType.xmp)
        image.setXmpData(xmp)
        image.writeMetadata()
        with image.io().data() as view:
            return bytes(view)
    except exiv2.Exiv2Error as exc:
        raise FaceCliError(str(target), f"cannot encode the XMP: {exc.message}") from None


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def write_regions(photo: Path, size: tuple[int, int], regions: list[Region]) -> WriteReport:
    """Add ``regions`` (boxes in pixels of the displayed image, ``size`` = its width, height) to the photo's
    sidecar ``<photo>.<ext>.xmp``, creating it if need be; the photo is never written.

    Every other tag and region stays. A face over an existing Face region (IoU >= 0.5) of the same name (or of
    none) replaces its area, so a second export changes nothing; over one of another name it is not written and
    is reported as a conflict; any other is added. ``AppliedToDimensions`` becomes the stored image's size.
    """
    _exiv2()  # a missing extra is the first thing said
    width, height = size
    if width <= 0 or height <= 0:
        raise BadValue("size", size, "must be a positive width and height")
    target = sidecar_path(photo)
    check_replaceable(target, InputError)
    info = _open_photo(photo)
    new = [(r.name, _normalised(r, size, info.orientation)) for r in regions]
    before = _signature(target)
    seeded_from, mode = None, 0o600 | (os.stat(photo).st_mode & 0o044)
    if before is not None:
        image, _data = _open_sidecar(target)
        xmp = image.xmpData()
        mode = stat.S_IMODE(os.stat(target).st_mode)
    elif os.path.lexists(lightroom := _lightroom_path(photo)) and lightroom != photo:
        image, _data = _open_sidecar(lightroom)
        xmp, seeded_from = image.xmpData(), lightroom
    else:  # the photo's own XMP, changed in memory only: the photo is never written back
        xmp = info.xmp
        seeded_from = photo if len(xmp) else None
    added, replaced, kept, conflicts = _merge(xmp, new, _displayed(size, info.orientation))
    if not added and not replaced:
        return WriteReport(target, added, replaced, kept, conflicts, written=False)
    report = WriteReport(target, added, replaced, kept, conflicts, seeded_from=seeded_from)
    data = _encode(xmp, target)
    try:
        with new_file(target.parent, target.name, ".xmp") as (fd, tmp):
            os.fchmod(fd, mode)
            with os.fdopen(os.dup(fd), "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if _signature(target) != before:
                raise InputError(str(target), "changed while facecli was writing it: nothing written, try again")
            publish(tmp, target, InputError)
    except OSError as exc:
        raise InputError(str(target), f"cannot write: {exc.strerror or exc}") from None
    return report
