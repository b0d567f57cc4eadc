"""Messages that tell the truth: counts in the singular for one, and the reason that really applies."""

from __future__ import annotations

import re


def test_one_template_is_singular_and_two_people_plural(run, images):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    assert run("enroll", "biden", str(images / "biden.jpg")).returncode == 0
    proc = run("identify", str(images / "obama2.jpg"))
    assert "FPIR 0.01 with 2 people" in proc.stderr
    proc = run("gallery", "remove", "biden")
    assert proc.returncode == 0 and "removed biden (1 template)" in proc.stderr, proc.stderr
    proc = run("identify", str(images / "obama2.jpg"))
    assert "FPIR 0.01 with 1 person" in proc.stderr and "1 people" not in proc.stderr


def test_renaming_someone_not_enrolled_says_so_whatever_the_new_name(run, images):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    proc = run("gallery", "rename", "nobody", "obama")
    assert proc.returncode == 2 and "nobody: no such person" in proc.stderr and "already" not in proc.stderr
    proc = run("gallery", "rename", "obama", "obama")
    assert proc.returncode == 0


def test_facecli_threads_bounds_the_workers_and_a_bad_value_is_one_line(run, images, monkeypatch):
    import facecli

    monkeypatch.setenv("FACECLI_THREADS", "1")
    assert facecli.load(device="cpu").pipeline.workers == 1
    proc = run("detect", str(images / "obama2.jpg"), env={"FACECLI_THREADS": "many"})
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: FACECLI_THREADS: 'many' is not a number of threads between 0 and 1024"]


def test_verbose_says_where_the_time_went_stage_by_stage(run, images):
    proc = run("detect", str(images / "obama.jpg"), str(images / "biden.jpg"), "--verbose", "--json")
    assert proc.returncode == 0
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("timings: ")]
    stages = dict(re.findall(r"(\w+) ([\d.]+) s \(", line))
    assert {"read", "decode", "detect", "crop"} <= set(stages) and "embed" not in stages  # detect embeds nothing
    assert float(stages["detect"]) > 0 and "(2x)" in line.split("detect")[1]
    quiet = run("detect", str(images / "obama.jpg"), "--json")
    assert "timings" not in quiet.stderr


def test_a_template_remembers_its_photo_by_its_absolute_path(run, images, tmp_path):
    import shutil
    import subprocess

    from tests.helpers import FACECLI

    (tmp_path / "photos").mkdir()
    shutil.copy(images / "obama.jpg", tmp_path / "photos" / "o.jpg")
    env = {**__import__("os").environ, "FACECLI_GALLERY": str(run.gallery), "FACECLI_DEVICE": "cpu"}
    enrolled = subprocess.run([FACECLI, "enroll", "obama", "photos/o.jpg"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
    assert enrolled.returncode == 0, enrolled.stderr
    shown = run("gallery", "show", "obama", "--json")  # from another folder
    (row,) = [__import__("json").loads(line) for line in shown.stdout.splitlines()]
    assert row["source"] == str(tmp_path / "photos" / "o.jpg")


def test_search_takes_a_folder_like_every_command_that_reads_photos(run, images, tmp_path, no_face):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    assert run("enroll", "biden", str(images / "biden.jpg")).returncode == 0
    folder = tmp_path / "unknowns"
    (folder / "sub").mkdir(parents=True)
    for name in ("obama2.jpg", "biden.jpg"):
        (folder / "sub" / name).symlink_to(images / name)
    (folder / "flag.png").symlink_to(no_face)
    proc = run("search", str(folder), "--top-k", "1", "--json")
    assert proc.returncode == 2 and "flag.png: no face found" in proc.stderr  # the others still searched
    rows = [__import__("json").loads(line) for line in proc.stdout.splitlines()]
    assert {(r["file"].rsplit("/", 1)[1], r["name"]) for r in rows} == {("obama2.jpg", "obama"), ("biden.jpg", "biden")}
    listed = run("search", "-", "--top-k", "2", "--json", stdin=f"{images / 'obama3.jpg'}\n")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 2
