"""A photo with several faces gives the face that agrees with the person's other photos (real group photos made
from the sample portraits, real models)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from facecli.decisions import AGREEMENT_MARGIN, agreeing_face


def _rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_the_group_photo_gives_the_face_of_the_person_it_is_filed_under(run, images, side_by_side):
    # side_by_side: obama.jpg on the left, biden.jpg on the right; each person's other photo shows them alone
    width = cv2.imread(str(side_by_side)).shape[1]
    for name, alone, left in (("obama", "obama2.jpg", True), ("biden", "biden.jpg", False)):
        proc = run("enroll", name, str(images / alone), str(side_by_side), "--json")
        assert proc.returncode == 0, proc.stderr
        single, group = _rows(proc.stdout)
        assert single["chosen"] == "only" and single["faces"] == 1 and single["agreement"] is None
        assert group["status"] == "added" and group["chosen"] == "agreement" and group["faces"] == 2
        centre = (group["box"][0] + group["box"][2]) / 2
        assert (centre < width / 2) == left  # the face of the person named, not the larger or the nearer one
        assert group["agreement"] < 1.0 < group["next"]  # how clearly: theirs is near, the other far


def test_someone_enrolled_before_is_told_apart_in_a_group_photo_alone(run, images, side_by_side):
    assert run("enroll", "biden", str(images / "biden.jpg")).returncode == 0
    proc = run("enroll", "biden", str(side_by_side), "--json")
    assert proc.returncode == 0, proc.stderr
    (row,) = _rows(proc.stdout)
    assert row["chosen"] == "agreement" and row["face"] == 1  # the smaller face: biden's


def test_a_group_photo_with_nothing_to_compare_with_still_needs_largest(run, side_by_side):
    proc = run("enroll", "obama", str(side_by_side))
    assert proc.returncode == 2
    assert "2 faces found; obama has no other photo showing one face to tell theirs by; use --largest" in proc.stderr


def test_two_faces_of_the_same_person_are_ambiguous_and_refused(run, images, tmp_path):
    a, b = (cv2.imread(str(images / p)) for p in ("obama2.jpg", "obama3.jpg"))
    b = cv2.resize(b, (round(b.shape[1] * a.shape[0] / b.shape[0]), a.shape[0]))
    twice = tmp_path / "twice.jpg"
    cv2.imwrite(str(twice), np.hstack([a, b]))
    proc = run("enroll", "obama", str(images / "obama.jpg"), str(twice), "--json")
    assert proc.returncode == 2
    assert "faces 1 and 2 of 2 both look like obama's other photos" in proc.stderr
    assert [r["status"] for r in _rows(proc.stdout)] == ["added", "error"]


def test_tuning_sets_choose_by_agreement_too(images, side_by_side):
    import facecli
    from facecli.tune.data import embed_people

    engine = facecli.load(device="cpu")
    items = [("obama", str(images / "obama2.jpg")), ("obama", str(side_by_side)),
             ("biden", str(images / "biden.jpg"))]
    labelled, errors = embed_people(engine, items)
    assert errors == [] and labelled.people == ["obama", "obama", "biden"]
    obama_alone = engine.faces(str(images / "obama.jpg"))[0].embedding
    assert float(np.sum((labelled.embeddings[1] - obama_alone) ** 2)) < 0.1  # the group photo's obama face


@pytest.mark.parametrize("distances, expected", [
    ([0.4, 1.6], (0, None)),
    ([1.6, 0.4, 1.9], (1, None)),
    ([1.5, 1.7], (None, "none agrees")),
    ([0.4, 0.4 + AGREEMENT_MARGIN / 2], (None, "ambiguous")),
    ([0.4, 0.4 + AGREEMENT_MARGIN + 0.01], (0, None)),
])
def test_the_agreement_rule(distances, expected):
    assert agreeing_face(distances, tau=1.36) == expected
