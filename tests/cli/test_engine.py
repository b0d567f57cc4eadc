"""`facecli detect` and `facecli embed` through the installed command."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np

from tests.helpers import json_rows


def test_detect_json_rows_carry_box_score_landmarks(run, images):
    proc = run("detect", str(images / "obama.jpg"), str(images / "biden.jpg"), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json_rows(proc.stdout)
    assert [r["file"] for r in rows] == [str(images / "obama.jpg"), str(images / "biden.jpg")]
    for r in rows:
        assert r["face"] == 0 and len(r["box"]) == 4 and 0.7 <= r["score"] <= 1  # YuNet's floor
        assert len(r["landmarks"]) == 5 and all(len(p) == 2 for p in r["landmarks"])


def test_embed_reads_paths_from_stdin_and_writes_npy(run, images, tmp_path):
    names = ["obama.jpg", "obama2.jpg", "biden.jpg"]
    npy = tmp_path / "faces.npy"
    proc = run("embed", "-", "--json", "--npy", str(npy), stdin="".join(f"{images / n}\n" for n in names))
    assert proc.returncode == 0, proc.stderr
    rows = json_rows(proc.stdout)
    assert [r["file"].split("/")[-1] for r in rows] == names
    emb = np.array([r["embedding"] for r in rows])
    assert emb.shape == (3, 640) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    assert rows[0]["model"] == "fusion" and rows[0]["provider"] == "cpu"
    saved = np.load(npy)
    assert saved.shape == (3, 640) and np.allclose(saved, emb, atol=1e-5)
    d = ((emb[:, None] - emb[None]) ** 2).sum(-1)
    assert d[0, 1] < d[0, 2]  # obama-obama2 closer than obama-biden


def test_image_without_face_is_accounted_for(run, images, no_face):
    proc = run("embed", str(no_face), str(images / "obama.jpg"), "--json")
    assert proc.returncode == 1, proc.stderr  # 1: some image had no face
    rows = json_rows(proc.stdout)
    assert rows[0] == {"file": str(no_face), "face": None, "error": "no face found"}
    assert rows[1]["face"] == 0
    assert "no face found" in proc.stderr


def test_all_faces_of_a_group_photo_and_crops(run, side_by_side, tmp_path):
    crops = tmp_path / "crops"
    proc = run("detect", str(side_by_side), "--json", "--crops", str(crops))
    assert proc.returncode == 0, proc.stderr
    rows = json_rows(proc.stdout)
    assert [r["face"] for r in rows] == [0, 1]
    files = sorted(crops.iterdir())
    assert len(files) == 2 and all(f.parent == crops for f in files)
    assert all(cv2.imread(str(f)).shape == (160, 160, 3) for f in files)


def test_haar_detector_has_no_landmarks(run, images):
    proc = run("detect", str(images / "biden.jpg"), "--detector", "haar", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json_rows(proc.stdout)
    assert len(rows) == 1 and rows[0]["landmarks"] is None


def test_bad_input_is_one_line_and_the_rest_is_processed(run, images, tmp_path):
    proc = run("detect", str(tmp_path / "missing.jpg"), str(images / "obama.jpg"), "--json")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {tmp_path / 'missing.jpg'}: no such file"
    assert json_rows(proc.stdout)[1]["face"] == 0


def test_python_dash_m_works():
    proc = subprocess.run([sys.executable, "-m", "facecli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "identify" in proc.stdout and "enroll" in proc.stdout
