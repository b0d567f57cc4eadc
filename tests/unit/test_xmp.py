"""Face regions in XMP (facecli/xmp.py) on copies of the sample photos, every file made and read back by libexiv2.

The existing sidecars, embedded XMP and rotated photos the module meets are made here with the same binding
(python-exiv2), the way digiKam, Lightroom and Windows Photo Gallery would have written them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import cv2
import exiv2
import numpy as np
import pytest

from facecli.errors import FaceCliError, InputError
from facecli.xmp import Region, read_regions, sidecar_path, write_regions

LIST = "Xmp.mwg-rs.Regions/mwg-rs:RegionList"
DARKTABLE = "http://darktable.sf.net/"


def _container(kind: str) -> exiv2.XmpTextValue:
    value = exiv2.XmpTextValue()
    if kind == "struct":
        value.setXmpStruct()
    else:
        value.setXmpArrayType({"bag": exiv2.XmpValue.XmpArrayType.xaBag,
                               "seq": exiv2.XmpValue.XmpArrayType.xaSeq}[kind])
    return value


def _xmp(entries: list[tuple[str, object]]) -> exiv2.XmpData:
    """XmpData from (key, value) pairs: a value "struct", "bag" or "seq" opens an empty container."""
    exiv2.XmpProperties.registerNs(DARKTABLE, "darktable")
    data = exiv2.XmpData()
    for key, value in entries:
        data[key] = _container(value) if value in ("struct", "bag", "seq") else value
    return data


def _region(index: int, name: str | None, kind: str, area: tuple[float, float, float, float]) -> list:
    """An MWG region as a program writes it: area = normalised centre x, y, width, height."""
    prefix = f"{LIST}[{index}]/mwg-rs:"
    entries = [(prefix + "Type", kind), (prefix + "Area", "struct")]
    entries += [(f"{prefix}Area/stArea:{k}", str(v)) for k, v in zip("xywh", area)]
    entries += [(prefix + "Area/stArea:unit", "normalized")]
    return entries + ([(prefix + "Name", name)] if name is not None else [])


def _regions_header(width: int, height: int) -> list:
    dims = "Xmp.mwg-rs.Regions/mwg-rs:AppliedToDimensions"
    return [("Xmp.mwg-rs.Regions", "struct"), (dims, "struct"), (f"{dims}/stDim:w", str(width)),
            (f"{dims}/stDim:h", str(height)), (f"{dims}/stDim:unit", "pixel"), (LIST, "bag")]


def _write_sidecar(path: Path, entries: list) -> None:
    """A new XMP sidecar file, created by libexiv2."""
    image = exiv2.ImageFactory.create(exiv2.ImageType.xmp, str(path))
    image.setXmpData(_xmp(entries))
    image.writeMetadata()


def _tags(path: Path) -> dict[str, tuple[str, str]]:
    """Every XMP property in the file at ``path`` (a sidecar or a photo): key -> (type, value)."""
    image = exiv2.ImageFactory.open(str(path))
    image.readMetadata()
    return {d.key(): (d.typeName(), d.toString()) for d in image.xmpData()}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _size(photo: Path) -> tuple[int, int]:
    """The size of the photo as facecli's detector sees it (OpenCV applies the EXIF orientation)."""
    height, width = cv2.imread(str(photo)).shape[:2]
    return width, height


@pytest.fixture
def photo(images: Path, tmp_path: Path) -> Path:
    target = tmp_path / "obama.jpg"
    shutil.copyfile(images / "obama.jpg", target)
    os.chmod(target, 0o644)
    return target


def _close(found: list[Region], expected: list[Region]) -> None:
    assert [r.name for r in found] == [r.name for r in expected]
    for got, want in zip(found, expected):
        assert np.allclose(got.box, want.box, atol=1.0), (got, want)


FACES = [Region("Émile", (100.0, 50.0, 300.0, 260.0)), Region("李", (420.0, 600.0, 560.0, 790.0)),
         Region("Zoë O'Brien", (700.0, 900.0, 900.0, 1130.0))]


def test_written_regions_read_back_within_a_pixel_with_their_names(photo):
    size = _size(photo)
    report = write_regions(photo, size, FACES)
    assert (report.added, report.replaced, report.kept, report.conflicts) == (3, 0, 0, [])
    assert report.sidecar == sidecar_path(photo) == photo.parent / "obama.jpg.xmp"
    got_size, found = read_regions(photo)
    assert got_size == size
    _close(found, FACES)
    tags = _tags(report.sidecar)
    assert tags[f"{LIST}[1]/mwg-rs:Type"] == ("XmpText", "Face")
    assert tags[f"{LIST}[2]/mwg-rs:Area/stArea:unit"][1] == "normalized"
    x, w = (float(tags[f"{LIST}[1]/mwg-rs:Area/stArea:{k}"][1]) for k in "xw")
    assert x == pytest.approx(200 / size[0], abs=1e-5) and w == pytest.approx(200 / size[0], abs=1e-5)  # centre


def test_the_photo_is_never_written(photo):
    before = _sha256(photo)
    write_regions(photo, _size(photo), FACES)
    write_regions(photo, _size(photo), FACES[:1])
    read_regions(photo)
    assert _sha256(photo) == before


def test_a_new_sidecar_is_readable_by_those_who_read_the_photo(photo):
    write_regions(photo, _size(photo), FACES)
    assert oct(os.stat(sidecar_path(photo)).st_mode & 0o777) == oct(0o644)
    sidecar_path(photo).unlink()
    os.chmod(photo, 0o600)
    write_regions(photo, _size(photo), FACES)
    assert oct(os.stat(sidecar_path(photo)).st_mode & 0o777) == oct(0o600)


def test_an_existing_sidecar_keeps_every_other_tag_and_region(photo):
    width, height = _size(photo)
    sidecar = sidecar_path(photo)
    _write_sidecar(sidecar, [("Xmp.dc.subject", "bag"), ("Xmp.dc.subject[1]", "holiday"),
                             ("Xmp.dc.subject[2]", "Émile"), ("Xmp.xmp.Rating", "4"),
                             ("Xmp.digiKam.TagsList", "seq"), ("Xmp.digiKam.TagsList[1]", "People/Émile"),
                             ("Xmp.darktable.history", "seq"), ("Xmp.darktable.history[1]/darktable:operation",
                                                               "exposure"),
                             ("Xmp.darktable.history[1]/darktable:params", "0000803f")]
                   + _regions_header(width, height)
                   + _region(1, "Rex", "Pet", (0.2, 0.8, 0.1, 0.1))
                   + _region(2, "Hand Tagged", "Face", (0.9, 0.1, 0.1, 0.1)))
    os.chmod(sidecar, 0o640)
    before = _tags(sidecar)
    report = write_regions(photo, (width, height), FACES)
    assert (report.added, report.replaced, report.kept, report.conflicts) == (3, 0, 2, [])
    after = _tags(sidecar)
    assert {k: v for k, v in after.items() if k in before} == before  # every tag, every value, as it was
    assert after[f"{LIST}[1]/mwg-rs:Name"] == ("XmpText", "Rex")
    assert after[f"{LIST}[2]/mwg-rs:Name"] == ("XmpText", "Hand Tagged")
    assert oct(os.stat(sidecar).st_mode & 0o777) == oct(0o640)
    _, found = read_regions(photo)
    _close(found, [Region("Hand Tagged", (0.85 * width, 0.05 * height, 0.95 * width, 0.15 * height)), *FACES])


def test_a_second_export_updates_instead_of_duplicating(photo):
    size = _size(photo)
    write_regions(photo, size, FACES)
    first = _tags(sidecar_path(photo))
    report = write_regions(photo, size, FACES)
    assert (report.added, report.replaced, report.kept, report.conflicts) == (0, 3, 0, [])
    assert _tags(sidecar_path(photo)) == first
    moved = [Region(r.name, (r.box[0] + 8, r.box[1] + 8, r.box[2] + 8, r.box[3] + 8)) for r in FACES]
    report = write_regions(photo, size, moved)
    assert (report.added, report.replaced) == (0, 3)
    _close(read_regions(photo)[1], moved)


def test_a_face_tagged_with_another_name_wins_and_is_reported(photo):
    width, height = _size(photo)
    sidecar = sidecar_path(photo)
    # the user's own tag over the place of FACES[0] (100..300 x 50..260)
    _write_sidecar(sidecar, _regions_header(width, height)
                   + _region(1, "Émile Zola", "Face", (200 / width, 155 / height, 200 / width, 210 / height)))
    before = _sha256(sidecar)
    report = write_regions(photo, (width, height), FACES[:1])
    assert (report.added, report.replaced, report.kept, report.written) == (0, 0, 1, False)
    assert report.conflicts == [("Émile", "Émile Zola")]
    assert _sha256(sidecar) == before
    report = write_regions(photo, (width, height), FACES)
    assert (report.added, report.conflicts) == (2, [("Émile", "Émile Zola")])
    assert [r.name for r in read_regions(photo)[1]] == ["Émile Zola", "李", "Zoë O'Brien"]


def test_an_unnamed_face_at_the_same_place_is_named(photo):
    width, height = _size(photo)
    _write_sidecar(sidecar_path(photo), _regions_header(width, height)
                   + _region(1, None, "Face", (200 / width, 155 / height, 200 / width, 210 / height)))
    report = write_regions(photo, (width, height), FACES[:1])
    assert (report.added, report.replaced, report.kept, report.conflicts) == (0, 1, 0, [])
    _close(read_regions(photo)[1], FACES[:1])


def test_other_types_unnamed_faces_and_points_are_not_read(photo):
    width, height = _size(photo)
    focus = f"{LIST}[4]/mwg-rs:"
    _write_sidecar(sidecar_path(photo), _regions_header(width, height)
                   + _region(1, "Rex", "Pet", (0.2, 0.8, 0.1, 0.1)) + _region(2, None, "Face", (0.5, 0.5, 0.1, 0.1))
                   + _region(3, "Ada", "Face", (0.5, 0.25, 0.2, 0.1))
                   + [(focus + "Type", "Focus"), (focus + "Name", "AF point"), (focus + "Area", "struct"),
                      (focus + "Area/stArea:x", "0.5"), (focus + "Area/stArea:y", "0.5"),
                      (focus + "Area/stArea:unit", "normalized")])
    assert read_regions(photo) == ((width, height), [Region("Ada", (0.4 * width, 0.2 * height, 0.6 * width,
                                                                   0.3 * height))])


def test_a_photo_without_regions_has_none(photo):
    assert read_regions(photo) == (None, [])


def test_a_lightroom_sidecar_is_read_and_seeds_the_new_one(photo):
    width, height = _size(photo)
    lightroom = photo.with_suffix(".xmp")
    _write_sidecar(lightroom, [("Xmp.xmp.Rating", "5")] + _regions_header(width, height)
                   + _region(1, "Ada", "Face", (0.5, 0.25, 0.2, 0.1)))
    assert read_regions(photo)[1] == [Region("Ada", (0.4 * width, 0.2 * height, 0.6 * width, 0.3 * height))]
    report = write_regions(photo, (width, height), FACES[:1])
    assert (report.added, report.kept, report.seeded_from) == (1, 1, lightroom)
    assert _tags(sidecar_path(photo))["Xmp.xmp.Rating"] == ("XmpText", "5")
    assert [r.name for r in read_regions(photo)[1]] == ["Ada", "Émile"]


def test_regions_embedded_in_the_photo_are_read(photo):
    width, height = _size(photo)
    image = exiv2.ImageFactory.open(str(photo))
    image.readMetadata()
    image.setXmpData(_xmp(_regions_header(width, height) + _region(1, "李", "Face", (0.5, 0.25, 0.2, 0.1))))
    image.writeMetadata()
    assert read_regions(photo) == ((width, height), [Region("李", (0.4 * width, 0.2 * height, 0.6 * width,
                                                                  0.3 * height))])
    report = write_regions(photo, (width, height), FACES[:1])
    assert (report.added, report.kept, report.seeded_from) == (1, 1, photo)


def test_microsoft_regions_are_read_when_there_are_no_mwg_ones(photo):
    width, height = _size(photo)
    mp = "Xmp.MP.RegionInfo/MPRI:Regions"
    _write_sidecar(sidecar_path(photo), [("Xmp.MP.RegionInfo", "struct"), (mp, "bag"),
                                         (f"{mp}[1]/MPReg:Rectangle", "0.25, 0.5, 0.125, 0.25"),
                                         (f"{mp}[1]/MPReg:PersonDisplayName", "Émile")])
    assert read_regions(photo) == ((width, height), [Region("Émile", (0.25 * width, 0.5 * height, 0.375 * width,
                                                                     0.75 * height))])
    report = write_regions(photo, (width, height), [Region("Bob", (0.25 * width, 0.5 * height, 0.375 * width,
                                                                   0.75 * height))])
    assert report.conflicts == [("Bob", "Émile")]


@pytest.mark.parametrize("content", [b"", b"not xml at all", "truncated"])
def test_a_corrupt_sidecar_is_an_error_naming_it_and_stays_as_it_was(photo, content):
    sidecar = sidecar_path(photo)
    if content == "truncated":
        _write_sidecar(sidecar, [("Xmp.xmp.Rating", "4")] + _regions_header(10, 10))
        content = sidecar.read_bytes()[:-200]
    sidecar.write_bytes(content)
    with pytest.raises(InputError, match=str(sidecar)):
        write_regions(photo, _size(photo), FACES)
    with pytest.raises(InputError, match=str(sidecar)):
        read_regions(photo)
    assert sidecar.read_bytes() == content
    assert sorted(p.name for p in photo.parent.iterdir()) == ["obama.jpg", "obama.jpg.xmp"]  # no temporary left


def test_a_symbolic_link_at_the_sidecar_is_refused(photo, tmp_path):
    elsewhere = tmp_path / "elsewhere.xmp"
    _write_sidecar(elsewhere, [("Xmp.xmp.Rating", "1")])
    before = _sha256(elsewhere)
    sidecar_path(photo).symlink_to(elsewhere)
    with pytest.raises(InputError, match="symbolic link"):
        write_regions(photo, _size(photo), FACES)
    assert _sha256(elsewhere) == before and sidecar_path(photo).is_symlink()


#: what EXIF orientation n does to the stored pixels to display them
TO_DISPLAY = {1: lambda a: a, 2: np.fliplr, 3: lambda a: np.rot90(a, 2), 4: np.flipud,
              5: lambda a: np.transpose(a, (1, 0, 2)), 6: lambda a: np.rot90(a, -1),
              7: lambda a: np.rot90(np.fliplr(a), -1), 8: lambda a: np.rot90(a, 1)}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_areas_are_relative_to_the_stored_pixels_of_a_rotated_photo(photo, orientation):
    """MWG areas cover the stored pixels: the stored crop, turned by the orientation, is the displayed crop."""
    image = exiv2.ImageFactory.open(str(photo))
    image.readMetadata()
    image.exifData()["Exif.Image.Orientation"] = exiv2.UShortValue(orientation)
    image.writeMetadata()
    stored = cv2.imread(str(photo), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    displayed = cv2.imread(str(photo))
    assert np.array_equal(TO_DISPLAY[orientation](stored), displayed)  # what OpenCV, and so facecli, shows
    size = displayed.shape[1], displayed.shape[0]
    face = Region("Émile", (120.0, 300.0, 420.0, 640.0))
    report = write_regions(photo, size, [face])
    tags = _tags(report.sidecar)
    sw, sh = stored.shape[1], stored.shape[0]
    dims = "Xmp.mwg-rs.Regions/mwg-rs:AppliedToDimensions/stDim:"
    assert (tags[dims + "w"][1], tags[dims + "h"][1]) == (str(sw), str(sh))
    x, y, w, h = (float(tags[f"{LIST}[1]/mwg-rs:Area/stArea:{k}"][1]) for k in "xywh")
    crop = stored[round((y - h / 2) * sh):round((y + h / 2) * sh), round((x - w / 2) * sw):round((x + w / 2) * sw)]
    x1, y1, x2, y2 = (round(v) for v in face.box)
    assert np.array_equal(TO_DISPLAY[orientation](crop), displayed[y1:y2, x1:x2])
    got_size, found = read_regions(photo)
    assert got_size == size
    _close(found, [face])


def test_without_the_extra_a_one_line_error_says_how_to_install_it(photo, monkeypatch):
    monkeypatch.setitem(sys.modules, "exiv2", None)  # what `import exiv2` meets when the package is not installed
    for call in (lambda: read_regions(photo), lambda: write_regions(photo, (10, 10), FACES)):
        with pytest.raises(FaceCliError, match=r"^xmp: needs the xmp extra: .* -m pip install -e .*\[xmp\]'$"):
            call()
