"""Hardening, privacy and permissions: files written only where asked, links planted by another user,
galleries private from the first byte and refused when others may write them, a full disk.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.helpers import FACECLI, one_line_error


# -- files written only where asked ----------------------------------------------------------------
def test_crops_never_leave_the_target_folder(run, images, tmp_path):
    nasty = tmp_path / "in" / ".." / "in2"
    nasty.mkdir(parents=True)
    (tmp_path / "in").mkdir(exist_ok=True)
    evil = tmp_path / "in2" / "..%2F..%2Fescape ; rm -rf.jpg"
    evil.write_bytes((images / "obama.jpg").read_bytes())
    crops = tmp_path / "crops"
    proc = run("detect", str(evil), str(tmp_path / "in" / ".." / "in2" / evil.name), "--crops", str(crops))
    assert proc.returncode == 0, proc.stderr
    written = sorted(p for p in tmp_path.rglob("*.png"))
    assert len(written) == 2 and all(p.parent == crops for p in written)


def _as_nobody(*cmd: str) -> None:
    subprocess.run(["runuser", "-u", "nobody", "--", *cmd], check=True, capture_output=True)


@pytest.fixture
def sticky():
    """A sticky, world-writable folder in /tmp where the user `nobody` plants things for us to trip on."""
    if os.geteuid() != 0 or subprocess.run(["runuser", "-u", "nobody", "--", "true"]).returncode != 0:
        pytest.skip("needs root and runuser to act as a second user (nobody)")
    folder = Path(tempfile.mkdtemp(prefix="facecli-sticky-", dir="/tmp"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder)


def test_links_planted_by_another_user_are_never_followed(run, images, sticky, tmp_path):
    loot = sticky / "loot"
    _as_nobody("mkdir", "-m", "0777", str(loot))
    planted = sticky / "g.db"
    _as_nobody("ln", "-s", str(loot / "stolen.db"), str(planted))  # dangling, owned by nobody
    one_line_error(run("enroll", "obama", str(images / "obama.jpg"), "--gallery", str(planted)),
                     "symbolic link owned by nobody")
    assert list(loot.iterdir()) == []

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = sticky / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    _as_nobody("ln", "-s", str(victim), str(out / "00000-obama2.png"))
    _as_nobody("ln", "-s", str(victim), str(out / "00000-obama2-face0.png"))
    gallery = tmp_path / "g.db"
    assert run("enroll", "obama", str(images / "obama.jpg"), "--gallery", str(gallery)).returncode == 0
    for args in (["identify", "--annotate", str(out), "--gallery", str(gallery)], ["detect", "--annotate", str(out)],
                 ["detect", "--crops", str(out)]):
        one_line_error(run(*args, str(images / "obama2.jpg")), "refusing to replace it")
    assert victim.read_text() == "precious"

    links = sticky / "links"
    links.mkdir(mode=0o777)
    links.chmod(0o777)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "00000-obama2-face0.jpg").write_text("precious")
    _as_nobody("ln", "-s", str(elsewhere), str(links / "cluster-0000"))
    proc = run("cluster", str(images / "obama2.jpg"), "--link", str(links))
    one_line_error(proc, "is in the way")
    assert (elsewhere / "00000-obama2-face0.jpg").read_text() == "precious"


def test_a_gallery_that_is_not_yours_or_is_writable_by_others_is_refused(run, images, tmp_path):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    photo = str(images / "obama2.jpg")
    run.gallery.chmod(0o666)
    one_line_error(run("identify", photo), "writable by everyone", "chmod 600")
    run.gallery.chmod(0o660)
    one_line_error(run("identify", photo), "writable by its group", "FACECLI_SHARED_GALLERY=1")
    assert run("identify", photo, env={"FACECLI_SHARED_GALLERY": "1"}).returncode == 0
    run.gallery.chmod(0o600)
    if os.geteuid() == 0:  # root can hand the file to another user
        os.chown(run.gallery, 65534, 65534)
        one_line_error(run("identify", photo), "owned by nobody")
        assert run("identify", photo, env={"FACECLI_SHARED_GALLERY": "1"}).returncode == 0
        for own in run.gallery.parent.glob(f"{run.gallery.name}*"):  # SQLite, as root, gave its journal to nobody
            os.chown(own, 0, 0)
    assert run("identify", photo).returncode == 0


def test_galleries_are_private_from_the_first_byte(run, images, tmp_path):
    os.umask(0o022)
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    assert (run.gallery.stat().st_mode & 0o777) == 0o600
    assert not [p for p in run.gallery.parent.iterdir() if p.name.startswith(".gallery.db.")]  # no leftovers


def test_a_failed_first_enroll_leaves_no_file_and_the_next_one_works(run, images, tmp_path):
    gallery = tmp_path / "full" / "g.db"
    gallery.parent.mkdir()

    def full_disk() -> None:  # writes past 4 KiB fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    env = dict(os.environ, FACECLI_GALLERY=str(gallery), FACECLI_DEVICE="cpu")
    proc = subprocess.run([FACECLI, "enroll", "obama", str(images / "obama.jpg")], env=env, capture_output=True,
                          text=True, preexec_fn=full_disk, timeout=300)
    one_line_error(proc, str(gallery))
    assert list(gallery.parent.iterdir()) == []
    assert run("enroll", "obama", str(images / "obama.jpg"), "--gallery", str(gallery)).returncode == 0


def test_embeddings_and_annotated_videos_are_private_and_never_follow_a_planted_link(run, images, sticky,
                                                                                     tmp_path):
    """Issue 24: `embed --npy` and `watch --annotate OUT.mp4` wrote through a link planted at their name, and
    made 0644 files of data derived from faces."""
    import cv2

    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 240))
    for _ in range(3):
        writer.write(cv2.resize(cv2.imread(str(images / "obama.jpg")), (320, 240)))
    writer.release()
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = sticky / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    for name in ("faces.npy", "annotated.mp4"):
        _as_nobody("ln", "-s", str(victim), str(out / name))
    one_line_error(run("embed", str(images / "obama2.jpg"), "--npy", str(out / "faces.npy")), "symbolic link")
    one_line_error(run("watch", "--video", str(clip), "--annotate", str(out / "annotated.mp4")), "symbolic link")
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in out.iterdir()) == ["annotated.mp4", "faces.npy"]  # the links, nothing new

    mine = tmp_path / "mine"
    mine.mkdir()
    old = os.umask(0o022)
    try:
        assert run("embed", str(images / "obama2.jpg"), "--npy", str(mine / "faces.npy")).returncode == 0
        assert run("watch", "--video", str(clip), "--annotate", str(mine / "annotated.mp4")).returncode == 0
    finally:
        os.umask(old)
    for name in ("faces.npy", "annotated.mp4"):
        assert stat.S_IMODE((mine / name).stat().st_mode) == 0o600 and (mine / name).stat().st_size > 0
    assert sorted(p.name for p in mine.iterdir()) == ["annotated.mp4", "faces.npy"]  # no temporary file left
