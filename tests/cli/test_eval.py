"""facecli eval pairs on the user's own pairs: the centre-crop fallback counted, a bad pairs file refused."""

from __future__ import annotations

import json


def test_user_pairs_count_the_centre_crop_fallback(run, images, no_face, tmp_path):
    pairs = tmp_path / "mine.txt"
    rows = [("obama.jpg", "obama2.jpg", 1), ("obama.jpg", "obama3.jpg", 1), ("obama2.jpg", "obama3.jpg", 1),
            ("obama.jpg", "biden.jpg", 0), ("obama2.jpg", "biden.jpg", 0), ("obama3.jpg", "biden.jpg", 0)]
    text = "".join(f"{images / a}\t{images / b}\t{s}\n" for a, b, s in rows)
    pairs.write_text(text + f"{no_face}\t{images / 'biden.jpg'}\t0\n")
    proc = run("eval", "pairs", "--pairs", str(pairs), "--json", env={"FACECLI_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["pairs"] == 7 and rep["images"] == 5 and rep["fallbacks"] == 1
    assert rep["tau_accuracy"] == 1.0  # these photos separate perfectly at the best tau


def test_bad_pairs_file(run, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("a.jpg b.jpg maybe\n")
    proc = run("eval", "pairs", "--pairs", str(bad))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and str(bad) in proc.stderr
