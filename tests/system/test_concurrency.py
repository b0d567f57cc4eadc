"""Hardening, the whole system under concurrency and crashes: eight concurrent writers, readers beside
writers, SIGKILL mid-enroll.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from facecli.gallery import open_gallery
from tests.helpers import FACECLI, json_rows, variant_photos


# -- concurrency ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def many_photos(images: Path, tmp_path_factory) -> list[Path]:
    """200 distinct real photos: the four portraits, shifted, scaled and re-encoded."""
    return variant_photos(images, tmp_path_factory.mktemp("many"), 480, 0.02, mirror=False)


def _spawn(args: list[str], gallery: Path) -> subprocess.Popen:
    env = dict(os.environ, FACECLI_GALLERY=str(gallery), FACECLI_DEVICE="cpu", FACECLI_THREADS="1")
    return subprocess.Popen([FACECLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_eight_concurrent_writers_lose_nothing(many_photos, tmp_path):
    gallery = tmp_path / "shared.db"
    procs = [_spawn(["enroll", f"person{k}", *map(str, many_photos[25 * k:25 * (k + 1)]), "--largest"], gallery)
             for k in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    with open_gallery(gallery) as g:
        assert [(p.name, p.templates) for p in g.persons()] == [(f"person{k}", 25) for k in range(8)]
        assert g.stats()["templates"] == 200 and g.check() == []


def test_identify_while_enrolling_never_sees_a_lock(run, images, many_photos):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    writers = [_spawn(["enroll", f"w{k}", *map(str, many_photos[k::4][:20]), "--largest"], run.gallery)
               for k in range(2)]
    readers = 0
    while any(w.poll() is None for w in writers):
        proc = run("identify", str(images / "obama2.jpg"), "--json")
        assert proc.returncode == 0 and "locked" not in proc.stderr, proc.stderr
        names = {p["name"] for p in json_rows(run("gallery", "list", "--json").stdout)}
        assert "obama" in names  # a reader sees whole persons only
        readers += 1
    for w in writers:
        assert w.wait() == 0, w.stderr.read()
    assert readers >= 1
    with open_gallery(run.gallery) as g:
        assert g.stats()["templates"] == 41 and g.check() == []


# -- crash safety ----------------------------------------------------------------------
def test_sigkill_mid_enroll_leaves_each_photo_enrolled_or_absent(many_photos, tmp_path):
    gallery = tmp_path / "crash.db"
    rng = random.Random(7)
    trials = 20
    outcomes = []
    for t in range(trials):
        # distinct photos per trial: one photo belongs to one person (a second name is refused)
        batch = [str(p) for p in many_photos[10 * t:10 * (t + 1)]]
        proc = _spawn(["enroll", f"t{t}", *batch, "--largest"], gallery)
        time.sleep(rng.uniform(0.3, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not gallery.exists() or gallery.stat().st_size == 0:
            outcomes.append(0)
            continue
        with sqlite3.connect(gallery) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        with open_gallery(gallery) as g:
            assert g.check() == []
            sources = [t_["source"] for t_ in g.templates_of(f"t{t}")] if g.has_person(f"t{t}") else []
        assert sorted(sources) in ([], sorted(batch)), sources  # all of this enroll, or nothing
        outcomes.append(len(sources))
    assert len(outcomes) == trials


def test_sigkill_mid_index_then_a_rerun_leaves_exactly_one_record_per_face(many_photos, tmp_path):
    """``facecli index`` killed at random moments, then run to the end: the index holds exactly what one
    uninterrupted run records (every photo, each face once), whatever the kills interrupted."""
    folder = tmp_path / "library"
    folder.mkdir()
    for p in many_photos[:60]:
        (folder / p.name).symlink_to(p)
    clean, crashed = tmp_path / "clean.db", tmp_path / "crashed.db"
    assert _spawn(["index", str(folder), "--quiet"], clean).wait() == 0
    rng = random.Random(11)
    for _ in range(4):
        proc = _spawn(["index", str(folder), "--quiet"], crashed)
        time.sleep(rng.uniform(1.0, 5.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = _spawn(["index", str(folder), "--json"], crashed)
    out, err = final.communicate(timeout=600)
    assert final.returncode == 0, err
    assert {r["status"] for r in json_rows(out)} <= {"new", "unchanged"}

    def content(gallery: Path) -> list[tuple]:
        with sqlite3.connect(gallery) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            return conn.execute("SELECT p.sha256, f.n, f.box FROM faces f JOIN photos p ON p.id = f.photo_id "
                                "ORDER BY p.sha256, f.n").fetchall()

    faces = content(crashed)
    assert faces == content(clean) and len(faces) >= 60
    with sqlite3.connect(crashed) as conn:
        assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM files").fetchone() == (60, 60)
