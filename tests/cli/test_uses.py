"""cluster, search and --annotate: the other uses of the embedding, through the installed command."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import json_rows

OBAMAS = ["obama.jpg", "obama2.jpg", "obama3.jpg"]
#: a hostile name: shell syntax, a newline, and a leading dot (hidden: a folder leaves it out, so it is named too)
HOSTILE = "..x ;$(rm -rf) \n.jpg"


@pytest.fixture
def folder(images, tmp_path) -> Path:
    """Three Obama photos and one of Biden, one with a hostile name."""
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    shutil.copy(images / "obama.jpg", d / "obama.jpg")
    shutil.copy(images / "obama2.jpg", d / "sub" / "obama2.jpg")
    shutil.copy(images / "obama3.jpg", d / HOSTILE)
    shutil.copy(images / "biden.jpg", d / "biden.jpg")
    return d


def test_cluster_groups_the_obamas_and_biden(run, folder, tmp_path):
    links = tmp_path / "by-person"
    proc = run("cluster", str(folder), str(folder / HOSTILE), "--json", "--link", str(links))
    assert proc.returncode == 0, proc.stderr
    rows = json_rows(proc.stdout)
    assert len(rows) == 4
    by_cluster: dict[int, set[str]] = {}
    for r in rows:
        by_cluster.setdefault(r["cluster"], set()).add(Path(r["file"]).name)
    assert sorted(map(len, by_cluster.values())) == [1, 3]
    assert by_cluster[1] == {"biden.jpg"}  # clusters are numbered largest first
    # links: one per face, inside the chosen folder, pointing at the photos
    made = sorted(p for p in links.rglob("*") if p.is_symlink())
    assert len(made) == 4 and all(p.parent.parent == links for p in made)
    assert {p.resolve() for p in made} == {Path(r["file"]).resolve() for r in rows}
    assert not any("\n" in p.name or "$" in p.name or p.name.startswith(".") for p in made)


def test_single_linkage_agrees_on_these_photos(run, folder):
    proc = run("cluster", str(folder), str(folder / HOSTILE), "--json", "--linkage", "single")
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["cluster"] for r in json_rows(proc.stdout)) == [0, 0, 0, 1]
    bad = run("cluster", str(folder), "--linkage", "ward")
    # a usage error that names the option, the value and the valid choices
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert all(w in bad.stderr for w in ("--linkage", "ward", "'average'", "'single'"))


def test_clusters_enrolled_as_unknown_can_be_named_and_identified(run, folder, images):
    proc = run("cluster", str(folder), "--enroll-as-unknown", "--json")
    assert proc.returncode == 0, proc.stderr
    persons = {r["person"] for r in json_rows(proc.stdout)}
    assert persons == {"unknown-1", "unknown-2"}
    assert run("gallery", "rename", "unknown-1", "obama").returncode == 0
    ident = json_rows(run("identify", str(images / "obama2.jpg"), "--json").stdout)
    assert ident[0]["name"] == "obama"
    again = run("cluster", str(folder / "biden.jpg"), "--enroll-as-unknown", "--json")
    assert {r["person"] for r in json_rows(again.stdout)} == {"unknown-3"}  # never reuses a name


def test_cluster_of_a_folder_without_faces(run, tmp_path, no_face):
    d = tmp_path / "empty"
    d.mkdir()
    shutil.copy(no_face, d / "wall.png")
    proc = run("cluster", str(d), "--json")
    assert proc.returncode == 1 and proc.stdout == "" and "no face" in proc.stderr


def test_search_lists_the_nearest_templates_across_people(run, images):
    for name, photo in [("obama", "obama.jpg"), ("obama", "obama3.jpg"), ("biden", "biden.jpg")]:
        assert run("enroll", name, str(images / photo)).returncode == 0
    rows = json_rows(run("search", str(images / "obama2.jpg"), "--top-k", "10", "--json").stdout)
    assert [r["rank"] for r in rows] == [1, 2, 3]  # only three templates exist
    assert [r["name"] for r in rows] == ["obama", "obama", "biden"]
    assert [Path(r["source"]).name for r in rows[:2]] in (["obama.jpg", "obama3.jpg"], ["obama3.jpg", "obama.jpg"])
    distances = [r["distance"] for r in rows]
    assert distances == sorted(distances) and distances[2] > 1.26 > distances[1]
    top1 = json_rows(run("search", str(images / "obama2.jpg"), "--top-k", "1", "--json").stdout)
    assert top1 == rows[:1]


def _changed_only_inside(original: np.ndarray, annotated: np.ndarray, boxes: list[list[float]]) -> None:
    assert annotated.shape == original.shape
    diff = np.any(annotated != original, axis=2)
    inside = np.zeros_like(diff)
    for x1, y1, x2, y2 in boxes:
        inside[max(int(y1) - 1, 0):int(np.ceil(y2)) + 1, max(int(x1) - 1, 0):int(np.ceil(x2)) + 1] = True
        assert diff[int(y1):int(y2), int(x1):int(x2)].any()  # something is drawn on each face
    assert not (diff & ~inside).any()


def test_identify_annotate_draws_inside_the_face_boxes_only(run, images, side_by_side, tmp_path):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    out = tmp_path / "annotated"
    proc = run("identify", str(side_by_side), str(images / "obama2.jpg"), "--json", "--annotate", str(out))
    rows = json_rows(proc.stdout)
    assert {r["name"] for r in rows} == {"obama", None}  # Biden: "not recognized"
    for file in {r["file"] for r in rows}:
        written = {r["annotated"] for r in rows if r["file"] == file}
        assert len(written) == 1
        (path,) = written
        assert Path(path).parent == out
        _changed_only_inside(cv2.imread(file), cv2.imread(path), [r["box"] for r in rows if r["file"] == file])


def test_detect_annotate_and_a_bad_folder(run, images, tmp_path):
    out = tmp_path / "det"
    proc = run("detect", str(images / "biden.jpg"), "--json", "--annotate", str(out))
    (row,) = json_rows(proc.stdout)
    _changed_only_inside(cv2.imread(str(images / "biden.jpg")), cv2.imread(row["annotated"]), [row["box"]])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    bad = run("detect", str(images / "biden.jpg"), "--annotate", str(blocker / "sub"))
    assert bad.returncode == 2 and "cannot create the folder" in bad.stderr and "Traceback" not in bad.stderr
