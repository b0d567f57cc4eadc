"""gallery copy into a gallery with people merges, and reports what it could not copy (real photos, real files)."""

from __future__ import annotations

import json


def test_a_merge_copy_adds_what_is_new_and_reports_each_conflict(run, images, tmp_path):
    source, target = tmp_path / "src.db", tmp_path / "dst.db"
    for gallery, name, photo in ((source, "obama", "obama.jpg"), (source, "biden", "biden.jpg"),
                                 (target, "joe", "biden.jpg"), (target, "obama", "obama2.jpg")):
        assert run("enroll", name, str(images / photo), "--gallery", str(gallery)).returncode == 0
    proc = run("gallery", "copy", str(source), str(target), "--json")
    assert proc.returncode == 2  # not everything could be copied
    assert proc.stderr.strip().splitlines() == [
        f"error: {images / 'biden.jpg'}: not copied to biden: this face is already enrolled as joe in {target}"]
    (row,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert row["merged"] and row["added"] == 1 and row["present"] == 0
    assert [(c["name"], c["holder"], c["status"]) for c in row["conflicts"]] == [("biden", "joe", "taken")]
    listed = run("gallery", "list", "--json", "--gallery", str(target))
    shown = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["name"], r["templates"]) for r in shown] == [("joe", 1), ("obama", 2)]  # joe kept; obama gained one
    human = run("gallery", "copy", str(source), str(target))
    assert human.stdout.startswith(f"merged {source} into {target}: 0 templates added, 1 already there, 1 conflict;")
