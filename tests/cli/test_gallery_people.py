"""cluster --enroll-as-unknown on a group photo, gallery merge and gallery split, through the installed command."""

from __future__ import annotations

import pytest

from tests.helpers import json_rows, one_line_error


@pytest.fixture
def folder(images, side_by_side, tmp_path):
    """A real two-person photo (Obama left, Biden right) and two single portraits."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in (side_by_side, images / "obama2.jpg", images / "biden.jpg"):
        (photos / photo.name).symlink_to(photo)
    return photos


def _held(run, row: dict) -> bool:
    """Whether the face of a cluster row is a template of its person (same photo, same box)."""
    shown = run("gallery", "show", row["person"], "--json")
    assert shown.returncode == 0, shown.stderr
    return any(t["source"] == row["file"] and t["box"] == pytest.approx(row["box"], abs=0.051)
               for t in json_rows(shown.stdout))


def test_every_face_a_cluster_names_is_in_the_gallery_under_that_name(run, folder):
    proc = run("cluster", str(folder), "--enroll-as-unknown", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json_rows(proc.stdout)
    assert len(rows) == 4 and {r["person"] for r in rows} == {"unknown-1", "unknown-2"}
    assert all(r["status"] == "added" and r["error"] is None and _held(run, r) for r in rows)
    group = [r for r in rows if r["file"].endswith("obama_and_biden.jpg")]
    assert len({r["person"] for r in group}) == 2  # both faces of the group photo, one person each

    again = run("cluster", str(folder), "--enroll-as-unknown", "--json")  # every face is someone's already
    assert again.returncode == 2 and again.stderr.count("error: ") == 4 and "Traceback" not in again.stderr
    assert all(r["status"] == "error" and "already enrolled as unknown-" in r["error"] for r in json_rows(again.stdout))
    listed = json_rows(run("gallery", "list", "--json").stdout)
    assert [(p["name"], p["templates"]) for p in listed] == [("unknown-1", 2), ("unknown-2", 2)]


def test_a_face_too_small_to_be_named_is_not_enrolled_and_its_row_says_so(run, folder):
    proc = run("cluster", str(folder), "--enroll-as-unknown", "--min-face", "200", "--json")
    assert proc.returncode == 2
    rows = json_rows(proc.stdout)
    small = [r for r in rows if r["status"] == "error"]  # Biden's face in the group photo: 154 px wide
    assert len(small) == 1 and small[0]["file"].endswith("obama_and_biden.jpg")
    assert "under the 200 px" in small[0]["error"]
    assert small[0]["box"][2] - small[0]["box"][0] < 200 and not _held(run, small[0])
    assert f"error: {small[0]['file']}#{small[0]['face']}: the face is" in proc.stderr
    assert all(_held(run, r) for r in rows if r["status"] == "added") and len(rows) == 4
    table = run("cluster", str(folder), "--enroll-as-unknown", "--min-face", "5000")
    assert table.returncode == 2 and "not enrolled" in table.stdout
    assert run("gallery", "list", "--json").stdout.count("\n") == 2  # no person for a cluster of faces left out


@pytest.fixture
def people(run, images):
    """obama (obama.jpg), unknown-1 (obama2.jpg) and biden (biden.jpg)."""
    for args in (["obama", str(images / "obama.jpg")], ["unknown-1", str(images / "obama2.jpg")],
                 ["biden", str(images / "biden.jpg")]):
        assert run("enroll", *args).returncode == 0
    return run


def _templates(run, name: str) -> list[dict]:
    return json_rows(run("gallery", "show", name, "--json").stdout)


def test_merge_joins_two_people_and_refuses_what_it_cannot(people, images, side_by_side):
    run = people
    assert run("enroll", "obama", str(side_by_side), "--largest").returncode == 0  # the left face: the larger
    assert run("enroll", "unknown-1", str(side_by_side), "--largest").returncode == 2  # obama's face now
    before = run("gallery", "list", "--json").stdout
    one_line_error(run("gallery", "merge", "obama", "nobody"), "nobody", "no such person")
    one_line_error(run("gallery", "merge", "nobody", "obama"), "nobody", "no such person")
    one_line_error(run("gallery", "merge", "obama", "obama"), "obama", "themselves")
    assert run("gallery", "list", "--json").stdout == before  # nothing changed
    proc = run("gallery", "merge", "obama", "unknown-1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json_rows(proc.stdout) == [{"source": "unknown-1", "target": "obama", "moved": 1, "dropped": 0,
                                       "source_removed": True}]
    assert sorted(t["source"] for t in _templates(run, "obama")) == sorted(
        [str(images / "obama.jpg"), str(images / "obama2.jpg"), str(side_by_side)])
    quiet = run("gallery", "merge", "obama", "biden", "-q")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    csv = run("gallery", "list", "--csv").stdout.splitlines()
    assert csv[0] == "name,templates,created" and len(csv) == 2 and csv[1].startswith("obama,4,")


def test_split_takes_a_wrong_face_out_or_moves_it(people, images):
    run = people
    ids = {t["source"]: t["id"] for t in _templates(run, "obama")}
    biden = _templates(run, "biden")[0]["id"]
    one_line_error(run("gallery", "split", "obama", str(biden), "--as", "bob"), f"template {biden}", "obama")
    one_line_error(run("gallery", "split", "nobody", str(biden)), "nobody", "no such person")
    one_line_error(run("gallery", "split", "obama", str(biden), "--as", "bi\u202eden"), "invisible")
    assert not any(p["name"] == "bob" for p in json_rows(run("gallery", "list", "--json").stdout))

    proc = run("gallery", "split", "biden", str(biden), "--as", "alice")
    assert proc.returncode == 0 and proc.stdout.strip() == \
        "moved 1 template of biden to alice; biden removed (no template left)"
    proc = run("gallery", "split", "obama", str(ids[str(images / "obama.jpg")]), "--csv")
    assert proc.returncode == 0 and proc.stdout.splitlines() == [
        "source,target,moved,dropped,source_removed", "obama,,0,1,true"]
    assert [p["name"] for p in json_rows(run("gallery", "list", "--json").stdout)] == ["alice", "unknown-1"]
