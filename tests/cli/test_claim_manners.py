"""verify --claim as a door script needs it: a negative answer for no face, every face reported, small faces never
"same" (real photos, real models)."""

from __future__ import annotations

import json

import cv2


def _rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_a_photo_without_a_face_is_a_no_face_row_and_exit_1(run, images, no_face):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    proc = run("verify", str(no_face), "--claim", "obama", "--json")
    assert proc.returncode == 1, proc.stderr
    (row,) = _rows(proc.stdout)
    assert row["decision"] == "no face" and row["faces"] == 0 and row["same"] is False
    assert row["face"] is None and row["distance"] is None


def test_several_faces_are_counted_and_all_faces_decides_on_each(run, images, side_by_side):
    assert run("enroll", "biden", str(images / "biden.jpg")).returncode == 0
    largest = run("verify", str(side_by_side), "--claim", "biden", "--json")
    (row,) = _rows(largest.stdout)
    assert row["faces"] == 2
    each = run("verify", str(side_by_side), "--claim", "biden", "--json", "--all-faces")
    assert each.returncode == 0, each.stderr  # biden is one of the two faces
    rows = _rows(each.stdout)
    assert [r["face"] for r in rows] == [0, 1] and all(r["faces"] == 2 for r in rows)
    assert sorted(r["decision"] for r in rows) == ["different", "same"]
    # the largest face decides without --all-faces: exit 0 exactly when it is biden's
    assert (largest.returncode == 0) == (rows[0]["decision"] == "same")


def test_a_face_under_min_face_is_never_same(run, images, tmp_path):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    photo = cv2.imread(str(images / "obama2.jpg"))
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), cv2.resize(photo, None, fx=0.12, fy=0.12, interpolation=cv2.INTER_AREA))
    plain = _rows(run("verify", str(small), "--claim", "obama", "--json", "--min-face", "0").stdout)[0]
    box = plain["box"]
    side = min(box[2] - box[0], box[3] - box[1])
    assert plain["decision"] == "same", plain  # the face is obama's, and close enough at this size
    proc = run("verify", str(small), "--claim", "obama", "--json", "--min-face", str(side + 1))
    (row,) = _rows(proc.stdout)
    assert proc.returncode == 1 and row["decision"] == "cannot judge" and row["reason"] == "too small"
    assert row["same"] is False and row["distance"] == plain["distance"]  # the distance is still reported


def test_a_face_too_poor_to_judge_is_never_same(run, images, tmp_path):
    from facecli import decisions

    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    photo = cv2.imread(str(images / "obama2.jpg"))
    poor = tmp_path / "poor.jpg"  # a poor camera: 15 % of the size, JPEG quality 5
    cv2.imwrite(str(poor), cv2.resize(photo, None, fx=0.15, fy=0.15, interpolation=cv2.INTER_AREA),
                [cv2.IMWRITE_JPEG_QUALITY, 5])
    proc = run("verify", str(poor), "--claim", "obama", "--json")
    (row,) = _rows(proc.stdout)
    assert proc.returncode == 1 and row["decision"] == "cannot judge" and row["reason"] == "too poor"
    assert row["quality"] < decisions.min_quality("fusion") and row["distance"] <= row["tau"]  # it would pass
    (anyway,) = _rows(run("verify", str(poor), "--claim", "obama", "--json", "--min-quality", "0").stdout)
    assert anyway["decision"] == "same"
    (clear,) = _rows(run("verify", str(images / "obama2.jpg"), "--claim", "obama", "--json").stdout)
    assert clear["decision"] == "same" and clear["quality"] >= decisions.min_quality("fusion")
