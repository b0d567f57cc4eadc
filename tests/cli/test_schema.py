"""The JSON Lines fields of every command are exactly the schema in docs/output.md (new fields are added in both)."""

from __future__ import annotations

import re

import cv2
import numpy as np

from tests.helpers import ROOT, json_rows

SCHEMA = ROOT / "docs" / "output.md"

FACE = {"file", "face", "box", "score", "landmarks"}
VERIFY = {"file", "face", "box", "distance", "tau", "same", "decision"}
EVENT = {"event", "time", "frame", "track", "name", "decision", "distance", "tau", "gallery_size", "fpir", "min_gap",
         "box", "quality", "first_seen", "last_seen", "live", "liveness"}


def _identify_fields() -> set[str]:
    """The field names of the identify table in docs/output.md."""
    text = SCHEMA.read_text()
    section = text[text.index("`identify` — one object per face"):]
    section = section[:section.index("\n\n", section.index("| field |"))]
    return set(re.findall(r"^\| `(\w+)` \|", section, flags=re.M))


def test_every_command_emits_the_documented_fields(run, images, tmp_path, no_face):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    photo = str(images / "obama2.jpg")
    identify = _identify_fields()

    (row,) = json_rows(run("identify", photo, "--json", "--top-k", "2").stdout)
    assert set(row) == identify - {"error"}
    (row,) = json_rows(run("identify", str(no_face), "--json").stdout)
    assert set(row) == {"file", "face", "name", "distance", "tau", "gallery_size", "fpir", "min_gap", "decision",
                        "error"}
    (row,) = json_rows(run("identify", photo, "--json", "--annotate", str(tmp_path / "a")).stdout)
    assert set(row) == identify - {"error"} | {"annotated"}

    (row,) = json_rows(run("verify", photo, str(images / "obama3.jpg"), "--json").stdout)
    assert set(row) == VERIFY | {"other", "other_face", "other_box"}
    (row,) = json_rows(run("verify", photo, "--claim", "obama", "--json").stdout)
    assert set(row) == VERIFY | {"faces", "claim", "reason", "quality"}

    (row,) = json_rows(run("detect", photo, "--json", "--crops", str(tmp_path / "c")).stdout)
    assert set(row) == FACE | {"crop"}
    (row,) = json_rows(run("embed", photo, "--json").stdout)
    assert set(row) == FACE | {"embedding", "model", "provider"}
    (row,) = json_rows(run("embed", str(no_face), "--json").stdout)
    assert set(row) == {"file", "face", "error"}

    (row,) = json_rows(run("enroll", "obama", photo, "--json").stdout)
    assert set(row) == {"name", "file", "status", "error", "box", "quality", "face", "faces", "chosen", "agreement",
                        "next"}
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").symlink_to(images / "obama3.jpg")
    clustered = rows = json_rows(run("cluster", str(folder), "--json", "--link", str(tmp_path / "l"),
                                     "--enroll-as-unknown").stdout)
    assert {frozenset(r) for r in rows} == {frozenset({"cluster", "size", "file", "face", "box", "link", "person",
                                                       "status", "error"})}
    rows = json_rows(run("search", photo, "--json").stdout)
    assert {frozenset(r) for r in rows} == {frozenset({"file", "face", "rank", "name", "distance", "template",
                                                       "source"})}

    rows = json_rows(run("index", str(folder), "--json").stdout)
    assert {frozenset(r) for r in rows} == {frozenset({"file", "status", "faces", "error"})}
    person = clustered[0]["person"]  # the face of a.jpg is theirs
    rows = json_rows(run("find", person, "--json", "--link", str(tmp_path / "f")).stdout)
    assert rows and {frozenset(r) for r in rows} == {frozenset({"name", "file", "face", "box", "size", "distance",
                                                                "sha256", "link"})}
    rows = json_rows(run("people", "--json").stdout)
    assert rows and {frozenset(r) for r in rows} == {frozenset({"name", "faces", "photos"})}

    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 240))
    picture = cv2.imread(photo)
    picture = cv2.resize(picture, (round(picture.shape[1] * 240 / picture.shape[0]), 240))[:, :320]
    frame = np.full((240, 320, 3), 90, np.uint8)
    frame[:, :picture.shape[1]] = picture
    for _ in range(3):
        writer.write(frame)
    writer.write(np.zeros_like(frame))
    writer.release()
    rows = json_rows(run("watch", "--video", str(video), "--every", "1", "--json").stdout)
    assert [r["event"] for r in rows] == ["appear", "leave"] and all(set(r) == EVENT for r in rows)
    rows = json_rows(run("verify", "--video", str(video), "--claim", "obama", "--json").stdout)
    door = {"event", "time", "frame", "streak", "live", "liveness"} | VERIFY | {"faces", "claim", "reason", "quality"}
    assert rows[-1]["event"] == "confirmed" and all(set(r) == door for r in rows)
