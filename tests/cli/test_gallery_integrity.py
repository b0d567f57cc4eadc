"""Hardening, the gallery file: read-only folders and files, newer schemas, damaged rows, foreign
schema objects, one photo for one person.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import empty_gallery, json_rows, one_line_error


def test_gallery_in_read_only_folder(run, images, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:  # root ignores mode bits; an immutable folder stops root too
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("running as root on a file system without chattr +i")
    else:
        folder.chmod(0o500)
    try:
        proc = run("enroll", "obama", str(images / "obama.jpg"), "--gallery", str(folder / "g.db"))
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o700)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: {folder / 'g.db'}: cannot create the gallery: "
                                                f"{os.strerror(1 if os.geteuid() == 0 else 13)}"]
    assert list(folder.iterdir()) == []


def test_gallery_from_a_newer_schema_is_refused_untouched(run, images, tmp_path):
    newer = tmp_path / "newer.db"
    empty_gallery(newer, "facenet")
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.close()  # checkpoints the WAL into the file
    before = newer.read_bytes()
    for args in (["identify", str(images / "obama2.jpg")], ["enroll", "x", str(images / "obama.jpg")]):
        proc = run(*args, "--gallery", str(newer))
        assert proc.returncode == 2 and "newer facecli" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert newer.read_bytes() == before


def test_gallery_check_reports_damage(run, images):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    ok = run("gallery", "check", "--json")
    assert ok.returncode == 0 and json_rows(ok.stdout)[0]["ok"] is True
    conn = sqlite3.connect(run.gallery)
    conn.execute("UPDATE templates SET embedding = ?", (np.full(640, 0.5, "<f4").tobytes(),))
    conn.execute("INSERT INTO templates (person_id, model, embedding, source, sha256, box, created) "
                 "SELECT person_id, 'sface', embedding, 'x.jpg', 'abc', '[]', 0 FROM templates")
    conn.commit()
    conn.close()
    bad = run("gallery", "check", "--json")
    (row,) = json_rows(bad.stdout)
    assert bad.returncode == 1 and row["ok"] is False
    assert any("model sface" in p for p in row["problems"]) and any("norm" in p for p in row["problems"])


# -- issue 15: a gallery nobody can backdoor --------------------------------------------------------
@pytest.fixture
def two_people(run, images):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    assert run("enroll", "biden", str(images / "biden.jpg")).returncode == 0
    return run


def test_foreign_schema_objects_are_refused_and_named_by_check(two_people, images):
    run, photo = two_people, str(images / "obama2.jpg")
    with sqlite3.connect(run.gallery) as conn:  # every new template becomes a copy of obama's
        conn.execute("CREATE TRIGGER backdoor AFTER INSERT ON templates BEGIN UPDATE templates SET embedding = "
                     "(SELECT embedding FROM templates WHERE id = 1) WHERE id = NEW.id; END")
    for args in (["identify", photo], ["verify", photo, "--claim", "obama"], ["gallery", "list"],
                 ["enroll", "stranger", str(images / "obama3.jpg")]):
        one_line_error(run(*args), "trigger backdoor was not created by facecli")
    check = run("gallery", "check", "--json")
    (row,) = json_rows(check.stdout)
    assert check.returncode == 1 and row["problems"] == ["trigger backdoor was not created by facecli"]

    with sqlite3.connect(run.gallery) as conn:  # a view standing in for the templates table
        conn.execute("DROP TRIGGER backdoor")
        conn.execute("ALTER TABLE templates RENAME TO real_templates")
        conn.execute("CREATE VIEW templates AS SELECT * FROM real_templates")
    one_line_error(run("identify", photo), "was not created by facecli")
    problems = json_rows(run("gallery", "check", "--json").stdout)[0]["problems"]
    assert {"view templates was not created by facecli", "table real_templates was not created by facecli",
            "table templates is missing"} <= set(problems)


@pytest.mark.parametrize("damage", ["scaled", "infinite", "misaligned", "odd", "box", "dropped"])
def test_damaged_rows_are_an_error_naming_them_never_a_match(damage, two_people, images):
    run, stranger = two_people, str(images / "obama_partial_face.jpg")
    dim = 640
    with sqlite3.connect(run.gallery) as conn:
        (blob,) = conn.execute("SELECT embedding FROM templates WHERE id = 2").fetchone()
        vec = np.frombuffer(blob, "<f4").copy()
        if damage == "scaled":
            conn.execute("UPDATE templates SET embedding = ? WHERE id = 2", ((vec * 1000).tobytes(),))
        elif damage == "infinite":
            vec[0] = np.inf
            conn.execute("UPDATE templates SET embedding = ? WHERE id = 2", (vec.tobytes(),))
        elif damage == "misaligned":  # 0 bytes and twice the size: the stack would still reshape
            conn.execute("UPDATE templates SET embedding = ? WHERE id = 1", (b"",))
            conn.execute("UPDATE templates SET embedding = ? WHERE id = 2", (blob * 2,))
        elif damage == "odd":
            conn.execute("UPDATE templates SET embedding = ? WHERE id = 2", (blob[:-3],))
        elif damage == "box":
            conn.execute("UPDATE templates SET box = 'not json' WHERE id = 2")
        else:
            conn.execute("DROP TABLE persons")
    assert dim * 4 == len(blob)
    if damage == "box":
        one_line_error(run("gallery", "show", "biden"), "template 2 is damaged")
    elif damage == "dropped":
        for args in (["identify", stranger], ["gallery", "list"], ["gallery", "stats"]):
            one_line_error(run(*args), "table persons is missing")
    else:
        for args in (["identify", stranger], ["identify", stranger, "--templates", "best"],
                     ["verify", stranger, "--claim", "biden"], ["search", stranger]):
            one_line_error(run(*args), "is damaged")
    check = run("gallery", "check", "--json")
    assert check.returncode == 1 and json_rows(check.stdout)[0]["problems"]


def test_one_photo_one_person(run, images):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    proc = run("enroll", "barack", str(images / "obama.jpg"), str(images / "obama2.jpg"), "--json")
    assert proc.returncode == 2
    assert [(r["file"].split("/")[-1], r["status"]) for r in json_rows(proc.stdout)] == [
        ("obama.jpg", "error"), ("obama2.jpg", "added")]
    assert "already enrolled as obama" in proc.stderr
    listing = {p["name"]: p["templates"] for p in json_rows(run("gallery", "list", "--json").stdout)}
    assert listing == {"obama": 1, "barack": 1}


def _chattr(flag: str, path: Path) -> bool:
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def test_a_read_only_gallery_serves_every_read_and_refuses_writes_in_one_line(two_people, images):
    run, photo = two_people, str(images / "obama2.jpg")
    folder = run.gallery.parent
    if os.geteuid() == 0:
        if not _chattr("+i", folder):
            pytest.skip("running as root on a file system without chattr +i")
    else:
        folder.chmod(0o500)
    try:
        for args in (["identify", photo], ["gallery", "list"], ["gallery", "check"], ["gallery", "stats"],
                     ["verify", photo, "--claim", "obama"], ["search", photo]):
            proc = run(*args)
            assert proc.returncode == 0, (args, proc.stderr)
        one_line_error(run("gallery", "rename", "obama", "barack"), "cannot write")
        one_line_error(run("enroll", "obama", str(images / "obama3.jpg")), "cannot write")
    finally:
        if os.geteuid() == 0:
            _chattr("-i", folder)
        folder.chmod(0o700)
    assert run("gallery", "rename", "obama", "barack").returncode == 0
