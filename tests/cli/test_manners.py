"""Command-line manners (issue 16): stdout is data only, folders as inputs, stdin streamed, --csv.

Through the installed command, on the real photos and models.
"""

from __future__ import annotations

import csv
import io
import os
import select
import shutil
import subprocess
from pathlib import Path

import pytest

from facecli.cli.csvcells import csv_columns, flat
from tests.helpers import FACECLI, json_rows

TABLE = tuple("┏┃┡│└")  # the characters a rich table's lines start with
HOSTILE = 'a, "quoted"\nname.jpg'  # a comma, quotes and a newline: RFC 4180 quoting


def _table_only(stdout: str) -> bool:
    lines = [line for line in stdout.splitlines() if line.strip()]
    return bool(lines) and all(line.startswith(TABLE) for line in lines)


def _csv(stdout: str) -> list[dict[str, str]]:
    """Parse CSV output, the header first (``run`` reads text: CRLF line ends arrive as LF)."""
    return list(csv.DictReader(io.StringIO(stdout, newline="")))


def _header(stdout: str) -> list[str]:
    return next(csv.reader(io.StringIO(stdout, newline="")))


def _as_csv(value) -> str:
    """A JSON value as its CSV cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@pytest.fixture
def enrolled(run, images):
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    return run


@pytest.fixture
def photos(images, tmp_path) -> Path:
    """A folder tree of photos with a text file among them and a hostile file name."""
    d = tmp_path / "photos"
    (d / "b" / "deeper").mkdir(parents=True)
    shutil.copy(images / "obama2.jpg", d / "b" / "obama2.jpg")
    shutil.copy(images / "biden.jpg", d / "b" / "deeper" / "biden.JPG")
    shutil.copy(images / "obama3.jpg", d / HOSTILE)
    (d / "notes.txt").write_text("not a photo\n")
    # hidden files and folders, skipped: macOS's metadata beside each photo, a thumbnail cache
    (d / "b" / "._obama2.jpg").write_bytes(b"\x00\x05\x16\x07" + bytes(200))
    (d / ".thumbnails").mkdir()
    shutil.copy(images / "obama.jpg", d / ".thumbnails" / "obama.jpg")
    return d


def _in_order(folder: Path) -> list[str]:
    return [str(folder / HOSTILE), str(folder / "b" / "deeper" / "biden.JPG"), str(folder / "b" / "obama2.jpg")]


# -- 4. stdout is data only ------------------------------------------------------------------
def test_titles_and_status_lines_go_to_stderr(run, images, photos):
    proc = run("enroll", "obama", str(images / "obama.jpg"))
    assert proc.returncode == 0 and _table_only(proc.stdout), proc.stdout
    assert f"gallery {run.gallery}" in proc.stderr and str(run.gallery) not in proc.stdout

    proc = run("identify", str(images / "obama2.jpg"))
    assert proc.returncode == 0 and _table_only(proc.stdout) and "obama" in proc.stdout, proc.stdout
    assert "tau " not in proc.stdout and "tau 1." in proc.stderr and "FPIR 0.01 with 1 person" in proc.stderr
    quiet = run("identify", str(images / "obama2.jpg"), "--quiet")
    assert quiet.stdout == proc.stdout and quiet.stderr == ""

    proc = run("search", str(images / "obama2.jpg"))
    assert _table_only(proc.stdout) and "nearest templates to" in proc.stderr
    proc = run("cluster", str(photos))
    assert proc.returncode == 0 and _table_only(proc.stdout) and "clusters of 3 faces" in proc.stderr
    proc = run("gallery", "show", "obama")
    assert _table_only(proc.stdout) and "templates of obama" in proc.stderr

    # commands that only change the gallery: nothing on stdout, what they did on stderr (not with --quiet)
    proc = run("gallery", "set", "--fpir", "0.001")
    assert proc.returncode == 0 and proc.stdout == "" and "identify uses tau" in proc.stderr
    proc = run("gallery", "rename", "obama", "barack")
    assert proc.returncode == 0 and proc.stdout == "" and "renamed obama to barack" in proc.stderr
    proc = run("gallery", "remove", "barack", "--quiet")
    assert proc.returncode == 0 and proc.stdout == proc.stderr == ""
    assert run("gallery", "list").stdout.strip() == ""
    proc = run("gallery", "list", "--csv")  # no rows: the header still names the columns
    assert proc.stdout == "name,templates,created\n"


# -- 5. folders as inputs --------------------------------------------------------------------
def test_folders_are_read_recursively_in_sorted_order(enrolled, images, photos, tmp_path):
    run = enrolled
    expected = _in_order(photos)
    rows = json_rows(run("identify", str(photos), "--json").stdout)
    assert [r["file"] for r in rows] == expected  # the text file and hidden ones are skipped, .JPG is an image
    hidden = run("identify", str(photos / "b" / "._obama2.jpg"), "--json")  # named, a hidden file is read
    assert hidden.returncode == 2 and "._obama2.jpg" in hidden.stderr
    assert [r["name"] for r in rows] == ["obama", None, "obama"]
    assert rows == json_rows(run("identify", *expected, "--json").stdout)

    det = run("detect", str(photos / "b"), "--json")
    assert det.returncode == 0 and [r["file"] for r in json_rows(det.stdout)] == expected[1:]
    emb = json_rows(run("embed", str(photos / "b"), str(images / "obama.jpg"), "--json").stdout)
    assert [r["file"] for r in emb] == [*expected[1:], str(images / "obama.jpg")]

    claim = run("verify", str(photos), "--claim", "obama", "--json")
    assert claim.returncode == 1  # biden is not obama
    assert [(r["file"], r["same"]) for r in json_rows(claim.stdout)] == list(zip(expected, [True, False, True]))
    same = run("verify", str(photos / "b" / "obama2.jpg"), "--claim", "obama")
    assert same.returncode == 0
    two = run("verify", str(photos), str(images / "obama.jpg"))
    assert two.returncode == 2 and "--claim" in two.stderr and str(photos) in two.stderr

    # an empty folder is an error naming it; the other inputs are still processed
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.txt").write_text("no photos here\n")
    for args in (["identify", str(empty), str(images / "obama2.jpg")],
                 ["detect", str(empty), str(images / "obama2.jpg")],
                 ["verify", str(empty), "--claim", "obama"]):
        proc = run(*args, "--json")
        assert proc.returncode == 2, args
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith(f"error: {empty}: ") and "no image files" in line, line
        if args[0] != "verify":
            assert [r["file"] for r in json_rows(proc.stdout)] == [str(empty), str(images / "obama2.jpg")]


# -- 6. stdin streamed -------------------------------------------------------------------------
class _Lines:
    """The lines a process writes, each read as soon as it is complete (no read-ahead hides one from select)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def next(self, seconds: float = 300) -> str:
        """One line, waiting at most ``seconds`` for it (a guard against a hang, not a speed test)."""
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.fd], [], [], seconds)
            assert ready, "no output while the input pipe stays open: stdin is not streamed"
            chunk = os.read(self.fd, 1 << 16)
            assert chunk, "the output ended early"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode() + "\n"


@pytest.mark.parametrize("command", [["identify", "-", "--json"], ["detect", "-", "--csv"]])
def test_each_path_on_an_open_pipe_is_answered_before_the_next(command, enrolled, images):
    env = dict(os.environ, FACECLI_GALLERY=str(enrolled.gallery), FACECLI_DEVICE="cpu")
    proc = subprocess.Popen([FACECLI, *command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, bufsize=0)
    try:
        out = _Lines(proc.stdout.fileno())
        seen = []
        for name in ("obama2.jpg", "biden.jpg"):
            # the pipe stays open, as with `tail -f`: this row must come before the next path is written
            proc.stdin.write(f"{images / name}\n".encode())
            if command[-1] == "--csv" and not seen:
                assert out.next().startswith("file,face,box_x1,")
            seen.append(out.next())
        rest, err = proc.communicate(timeout=300)  # closes stdin: the end of the input
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.buffer + rest == b""
    if command[-1] == "--json":
        assert [r["name"] for r in json_rows("".join(seen))] == ["obama", None]
    else:
        assert all(line.endswith("\r\n") for line in seen)  # RFC 4180 line ends
        assert [row[0] for row in csv.reader(seen)] == [str(images / "obama2.jpg"), str(images / "biden.jpg")]


# -- 7. --csv ----------------------------------------------------------------------------------
def _same_rows(run, args: list[str]) -> list[dict[str, str]]:
    """The --csv rows of a command are its --json rows, flattened; returns them."""
    as_json = run(*args, "--json")
    as_csv = run(*args, "--csv")
    assert as_csv.returncode == as_json.returncode, as_csv.stderr
    table = _csv(as_csv.stdout)
    rows = json_rows(as_json.stdout)
    assert len(table) == len(rows) > 0
    header = _header(as_csv.stdout)
    for json_row, csv_row in zip(rows, table):
        cells = flat(json_row)
        assert set(cells) <= set(header)
        assert csv_row == {c: _as_csv(cells.get(c)) for c in header}
    return table


def test_csv_rows_are_the_json_rows_flattened(enrolled, images, photos, tmp_path):
    run = enrolled
    assert run("enroll", "biden", str(images / "biden.jpg")).returncode == 0
    table = _same_rows(run, ["identify", str(photos), str(tmp_path / "missing.jpg"), "--top-k", "2"])
    header = _header(run("identify", str(photos), "--csv", "--top-k", "2").stdout)
    assert header == csv_columns(("file", "face", "box", "score", "landmarks", "quality", "name", "distance", "tau",
                                  "gallery_size", "fpir", "min_gap", "decision", "candidate", "candidates", "error"),
                                 {"candidates": 2})
    assert header[:7] == ["file", "face", "box_x1", "box_y1", "box_x2", "box_y2", "score"]
    assert "landmarks_4_y" in header and header[-5:] == ["candidates_0_name", "candidates_0_distance",
                                                         "candidates_1_name", "candidates_1_distance", "error"]
    first = json_rows(run("identify", str(photos), "--json", "--top-k", "2").stdout)[0]
    assert table[0]["file"] == str(photos / HOSTILE)  # quoted, and read back intact
    assert float(table[0]["box_x1"]) == first["box"][0] and float(table[0]["landmarks_4_y"]) == first["landmarks"][4][1]
    assert table[0]["candidates_1_name"] == "biden" and table[1]["name"] == "biden"
    assert table[-1]["decision"] == "error" and table[-1]["box_x1"] == "" and table[-1]["error"] == "no such file"

    verify = _same_rows(run, ["verify", str(images / "obama.jpg"), str(images / "obama3.jpg")])
    assert verify[0]["same"] == "true" and "other_box_x2" in verify[0]
    claim = _same_rows(run, ["verify", str(photos), "--claim", "obama"])
    assert [r["same"] for r in claim] == ["true", "false", "true"] and "other" not in claim[0]
    _same_rows(run, ["detect", str(photos), "--detector", "haar"])  # no landmarks: empty cells
    embed = _same_rows(run, ["embed", str(images / "obama2.jpg")])
    assert [c for c in embed[0] if c.startswith("embedding_")][-1] == "embedding_639"
    _same_rows(run, ["search", str(images / "obama2.jpg")])
    _same_rows(run, ["cluster", str(photos), "--link", str(tmp_path / "links")])
    _same_rows(run, ["enroll", "obama", str(images / "obama.jpg")])  # present: the same row twice
    _same_rows(run, ["gallery", "stats"])
    _same_rows(run, ["calibrate", "--gallery-size", "10"])

    both = run("identify", str(photos), "--json", "--csv")
    assert both.returncode == 2 and both.stdout == "" and "--csv" in both.stderr and "--json" in both.stderr
