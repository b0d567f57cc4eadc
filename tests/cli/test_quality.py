"""`identify --min-quality`: a face too poor to judge gets no name but keeps its candidate, distance and quality;
0 turns the rule off; enroll warns of a poor template (real photos, degraded here, and the real models)."""

from __future__ import annotations

import cv2

from facecli import decisions
from tests.helpers import json_rows


def _poor(images, tmp_path) -> str:
    """obama2.jpg as a poor camera would give it: 15 % of its size (the face 44 px wide), JPEG quality 5."""
    photo = cv2.imread(str(images / "obama2.jpg"))
    path = str(tmp_path / "poor.jpg")
    cv2.imwrite(path, cv2.resize(photo, None, fx=0.15, fy=0.15, interpolation=cv2.INTER_AREA),
                [cv2.IMWRITE_JPEG_QUALITY, 5])
    return path


def test_a_face_too_poor_to_judge_is_not_named_and_min_quality_0_restores_the_answer(run, images, tmp_path):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    floor = decisions.min_quality("fusion")
    clear = run("identify", str(images / "obama2.jpg"), "--json")
    (row,) = json_rows(clear.stdout)
    assert clear.returncode == 0 and row["name"] == "obama" and row["quality"] >= floor
    poor = _poor(images, tmp_path)
    withheld = run("identify", poor, "--json")
    (row,) = json_rows(withheld.stdout)
    assert withheld.returncode == 1, withheld.stderr  # as for "not recognized": nobody named
    assert row["decision"] == "too poor to identify" and row["name"] is None and row["quality"] < floor
    assert row["candidate"] == "obama" and row["distance"] <= row["tau"]  # it would have been named
    (old,) = json_rows(run("identify", poor, "--json", "--min-quality", "0").stdout)
    assert old["decision"] == "recognized" and old["name"] == "obama" and old["quality"] == row["quality"]
    table = run("identify", poor)
    assert table.returncode == 1 and "too poor to identify" in table.stdout
    bad = run("identify", poor, "--min-quality", "1.5")
    assert bad.returncode == 2 and "--min-quality" in bad.stderr


def test_enroll_warns_of_a_face_too_poor_to_identify(run, images, tmp_path):
    proc = run("enroll", "obama", _poor(images, tmp_path), "--json")
    (row,) = json_rows(proc.stdout)
    assert proc.returncode == 0 and row["status"] == "added" and row["quality"] < decisions.min_quality("fusion")
    assert "warning:" in proc.stderr and "too poor to identify" in proc.stderr
    clear = run("enroll", "biden", str(images / "biden.jpg"))
    assert clear.returncode == 0 and "warning" not in clear.stderr
