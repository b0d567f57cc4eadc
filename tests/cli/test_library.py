"""The photo library from the command line: index, find, people, name, xmp export and import.

Real photos, the installed command, a private gallery file (and the same on a real PostgreSQL in
tests/cli/test_postgres.py). XMP written by facecli is read back with exiv2 itself, and every region is
checked against its face's box within a pixel.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import json_rows, one_line_error


def statuses(proc) -> dict[str, str]:
    return {Path(r["file"]).name: r["status"] for r in json_rows(proc.stdout)}


def test_index_twice_then_a_rename_then_prune(run, library):
    first = run("index", str(library), "--json")
    assert first.returncode == 0, first.stderr
    assert set(statuses(first).values()) == {"new"} and len(statuses(first)) == 5
    assert "5 new" in first.stderr and "6 faces recorded" in first.stderr
    assert set(statuses(run("index", str(library), "--json")).values()) == {"unchanged"}
    (library / "obama3.jpg").rename(library / "moved.jpg")
    got = statuses(run("index", str(library), "--json"))
    assert got["moved.jpg"] == "moved" and "obama3.jpg" not in got
    (library / "biden.jpg").unlink()
    pruned = run("index", str(library), "--prune")
    assert pruned.returncode == 0 and "1 file forgotten" in pruned.stderr
    assert json_rows(run("people", "--json").stdout) == []  # nobody enrolled: nobody listed


def test_a_bad_file_is_reported_and_the_rest_indexed(run, library, images):
    (library / "broken.jpg").write_bytes(b"\xff\xd8not a jpeg")
    shutil.copyfile(images / "biden.jpg", library / os.fsdecode(b"caf\xe9.jpg"))  # a name that is not UTF-8
    proc = run("index", str(library), "--json")
    assert proc.returncode == 2
    rows = json_rows(proc.stdout)
    errors = sorted(r["error"] for r in rows if r["status"] == "error")
    assert len(errors) == 2 and "not UTF-8" in errors[0] + errors[1]
    assert sum(r["status"] == "new" for r in rows) == 5
    assert proc.stderr.count("error:") == 2 and "broken.jpg" in proc.stderr
    missing = run("index", str(library / "gone"), "--prune", "--json")  # a missing root prunes nothing
    assert missing.returncode == 2 and "0 files forgotten" in missing.stderr
    assert set(statuses(run("index", str(library), "--json")).values()) == {"unchanged", "error"}


def test_find_lists_and_links_a_persons_photos_and_says_when_there_are_none(run, library, images, tmp_path):
    run("index", str(library), "--quiet")
    assert run("enroll", "obama", str(images / "obama.jpg"), "--quiet").returncode == 0
    proc = run("find", "obama", "--json", "--link", str(tmp_path / "people"))
    assert proc.returncode == 0, proc.stderr
    rows = json_rows(proc.stdout)
    assert {Path(r["file"]).name for r in rows} == {"obama.jpg", "obama2.jpg", "obama3.jpg", "group.jpg"}
    links = sorted((tmp_path / "people" / "obama").iterdir())
    assert len(links) == 4 and all(p.is_symlink() and p.resolve().parent == library for p in links)
    assert {r["link"] for r in rows} == {str(p) for p in links}
    mine = tmp_path / "people" / "obama" / "00009-mine.jpg"
    mine.write_bytes(b"the user's own file")
    again = run("find", "obama", "--json", "--link", str(tmp_path / "people"))
    assert sorted((tmp_path / "people" / "obama").iterdir()) == sorted([*links, mine])  # one link per photo
    assert {r["link"] for r in json_rows(again.stdout)} == {str(p) for p in links}
    (library / "obama3.jpg").rename(library / "moved.jpg")  # found again under its new name only
    run("index", str(library), "--quiet")
    run("find", "obama", "--quiet", "--link", str(tmp_path / "people"))
    now = {p.name for p in (tmp_path / "people" / "obama").iterdir() if p.is_symlink()}
    assert len(now) == 4 and any(n.startswith("moved-") for n in now) and not any("obama3" in n for n in now)
    assert run("find", "obama", "--min-face", "5000", "--link", str(tmp_path / "people")).returncode == 1
    assert list((tmp_path / "people" / "obama").iterdir()) == [mine]  # the stale links gone, the user's file kept
    (library / "moved.jpg").rename(library / "obama3.jpg")
    run("index", str(library), "--quiet")
    identified = json_rows(run("identify", str(library), "--json").stdout)
    named = {(Path(r["file"]).name, r["face"]) for r in identified if r["name"] == "obama"}
    assert named == {(Path(r["file"]).name, r["face"]) for r in rows}

    run("enroll", "biden", str(images / "biden.jpg"), "--quiet")
    assert run("gallery", "remove", "obama", "--quiet").returncode == 0
    one_line_error(run("find", "obama"), "obama", "no such person")
    csv = run("find", "biden", "--csv")
    assert csv.returncode == 0 and csv.stdout.splitlines()[0].startswith("name,file,face,box_x1")
    assert run("find", "biden", "--min-face", "5000").returncode == 1  # nothing that large: exit 1, no error


def test_people_unnamed_crops_and_name_then_find(run, library, tmp_path):
    run("index", str(library), "--quiet")
    proc = run("people", "--unnamed", "--json", "--crops", str(tmp_path / "faces"))
    assert proc.returncode == 0, proc.stderr
    clusters = json_rows(proc.stdout)
    top = clusters[0]
    assert all(set(c) == {"cluster", "faces", "photos", "file", "face", "box", "crop"} for c in clusters)
    assert top["faces"] == 4 and top["photos"] == 4  # Obama: three portraits and the group photo's left face
    assert Path(top["crop"]).is_file() and (Path(top["crop"]).stat().st_mode & 0o777) == 0o600
    assert json_rows(run("people", "--unnamed", "--json").stdout)[0]["cluster"] == top["cluster"]
    named = run("name", str(top["cluster"]), "Barack", "--json")
    assert named.returncode == 0 and {r["status"] for r in json_rows(named.stdout)} == {"added"}
    assert len({Path(r["file"]).name for r in json_rows(run("find", "Barack", "--json").stdout)}) == 4
    people = {r["name"]: r for r in json_rows(run("people", "--json").stdout)}
    assert people["Barack"]["faces"] == 4
    one_line_error(run("name", "999", "nobody"), "--cluster 999", "no such unnamed cluster")
    assert run("people", "--crops", str(tmp_path / "x")).returncode == 2  # --crops needs --unnamed


def test_xmp_export_is_read_back_by_exiv2_and_imported_into_an_empty_gallery(run, library, images, tmp_path):
    exiv2 = pytest.importorskip("exiv2", reason="the [xmp] extra is not installed")
    run("index", str(library), "--quiet")
    run("enroll", "obama", str(images / "obama.jpg"), "--quiet")
    run("enroll", "biden", str(images / "biden.jpg"), "--quiet")
    # a sidecar another app wrote already: its tags must survive
    sidecar = library / "group.jpg.xmp"
    image = exiv2.ImageFactory.create(exiv2.ImageType.xmp, str(sidecar))
    data = exiv2.XmpData()
    data["Xmp.dc.subject"] = "holiday"
    data["Xmp.xmp.Rating"] = "4"
    image.setXmpData(data)
    image.writeMetadata()
    before = {p.name: p.read_bytes() for p in library.glob("*.jpg")}

    proc = run("xmp", "export", str(library), "--json")
    assert proc.returncode == 0, proc.stderr
    assert {Path(r["file"]).name: sorted(r["names"]) for r in json_rows(proc.stdout)} == {
        "obama.jpg": ["obama"], "obama2.jpg": ["obama"], "obama3.jpg": ["obama"], "biden.jpg": ["biden"],
        "group.jpg": ["biden", "obama"]}
    assert {p.name: p.read_bytes() for p in library.glob("*.jpg")} == before  # photos never written

    detected = {(Path(r["file"]).name, r["face"]): r["box"] for r in json_rows(run("detect", str(library),
                                                                                    "--json").stdout)}
    from facecli.xmp import read_regions

    for photo in library.glob("*.jpg"):
        size, regions = read_regions(photo)
        for region in regions:
            assert any(all(abs(a - b) <= 1.0 for a, b in zip(region.box, box))
                       for (name, _), box in detected.items() if name == photo.name), (photo, region)
    image = exiv2.ImageFactory.open(str(sidecar))
    image.readMetadata()
    kept = image.xmpData()
    assert str(kept["Xmp.dc.subject"].value()) == "holiday" and str(kept["Xmp.xmp.Rating"].value()) == "4"

    again = run("xmp", "export", str(library), "--json")  # a second export duplicates nothing
    assert all(r["added"] == 0 for r in json_rows(again.stdout))

    fresh = ("--gallery", str(tmp_path / "fresh.db"))
    imported = run("xmp", "import", str(library), "--json", *fresh)
    assert imported.returncode == 0, imported.stderr
    people = {r["name"]: r["templates"] for r in json_rows(run("gallery", "list", "--json", *fresh).stdout)}
    assert people == {"obama": 4, "biden": 2}
    identified = json_rows(run("identify", str(images / "obama2.jpg"), "--json", *fresh).stdout)
    assert identified[0]["name"] == "obama"


def test_xmp_export_of_a_photo_not_indexed_is_an_error(run, library, images):
    pytest.importorskip("exiv2", reason="the [xmp] extra is not installed")
    run("enroll", "obama", str(images / "obama.jpg"), "--quiet")
    one_line_error(run("xmp", "export", str(library / "obama.jpg")), "obama.jpg", "not in the photo index")
    assert not (library / "obama.jpg.xmp").exists()
    run("index", str(library), "--quiet")
    shutil.copyfile(images / "obama2.jpg", library / "obama.jpg")  # edited after indexing: its boxes are stale
    one_line_error(run("xmp", "export", str(library / "obama.jpg")), "obama.jpg", "changed since it was indexed")
    assert not (library / "obama.jpg.xmp").exists()
