"""SFace through the command: a gallery keeps its model, and Haar cannot feed a five-point model."""

from __future__ import annotations

from tests.helpers import json_rows


def test_a_gallery_keeps_its_model(run, images):
    assert run("enroll", "obama", str(images / "obama.jpg"), "--model", "facenet").returncode == 0
    refused = run("identify", str(images / "obama2.jpg"), "--model", "sface")
    assert refused.returncode == 2
    assert "built with model facenet" in refused.stderr and "--model facenet" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert run("enroll", "biden", str(images / "biden.jpg"), "--model", "fusion").returncode == 2
    assert "biden" not in run("gallery", "list").stdout


def test_an_sface_gallery_is_used_without_repeating_model(run, images):
    assert run("enroll", "obama", str(images / "obama.jpg"), "--model", "sface").returncode == 0
    rows = json_rows(run("identify", str(images / "obama2.jpg"), str(images / "biden.jpg"), "--json").stdout)
    assert [r["name"] for r in rows] == ["obama", None]
    stats = json_rows(run("gallery", "stats", "--json").stdout)[0]
    assert stats["model"] == "sface" and stats["dim"] == 128


def test_haar_cannot_feed_a_five_point_model(run, images):
    proc = run("detect", str(images / "obama.jpg"), "--model", "sface", "--detector", "haar")
    assert proc.returncode == 2 and "landmarks" in proc.stderr
    assert run("detect", str(images / "obama.jpg"), "--model", "nosuch").returncode == 2
