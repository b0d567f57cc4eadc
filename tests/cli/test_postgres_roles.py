"""Another role of the same database against facecli (issue 24): code planted where facecli's statements could find
it, and a lock held to block every enroll. Against a real PostgreSQL 18 + pgvector server."""

from __future__ import annotations

import time

import pytest

from tests.helpers import one_line_error
from tests.helpers.postgres import READER, database_name, facecli

pytest.importorskip("psycopg", reason="the [postgres] extra is not installed")
pytestmark = pytest.mark.postgres

PLANT = [
    "CREATE TABLE public.ran (what text)",
    "GRANT INSERT ON public.ran TO PUBLIC",
    # an overload that matches facecli's advisory-lock call (an int4 key, an int2 key) better than pg_catalog's
    """CREATE FUNCTION public.pg_advisory_xact_lock(integer, smallint) RETURNS void LANGUAGE sql
       AS $$ INSERT INTO public.ran VALUES ('lock') $$""",
    # || on a name and a text, which the catalogue queries use
    """CREATE FUNCTION public.cat(name, text) RETURNS text LANGUAGE sql
       AS $$ INSERT INTO public.ran VALUES ('concat'); SELECT $1::text || $2 $$""",
    "CREATE OPERATOR public.|| (LEFTARG = name, RIGHTARG = text, FUNCTION = public.cat)",
]


def test_code_planted_by_another_role_is_refused_then_never_run(pg, db, images):
    database = database_name(db)
    assert facecli(db, "enroll", "obama", str(images / "obama.jpg")).returncode == 0
    pg.sql(["CREATE ROLE mallory LOGIN", "GRANT CREATE ON SCHEMA public TO mallory"], database=database)
    pg.sql(["SET ROLE mallory", *PLANT], database=database)
    photo = str(images / "obama2.jpg")
    for args in (["identify", photo], ["enroll", "obama", str(images / "obama3.jpg")], ["gallery", "check"]):
        one_line_error(facecli(db, *args), "the role mallory can create objects in the schema public",
                       "REVOKE CREATE ON SCHEMA public FROM mallory")
    pg.sql(["REVOKE CREATE ON SCHEMA public FROM mallory"], database=database)  # the planted objects stay
    for args in (["identify", photo], ["enroll", "obama", str(images / "obama3.jpg")], ["gallery", "check"],
                 ["gallery", "stats"], ["gallery", "list"], ["verify", photo, "--claim", "obama"],
                 ["identify", photo, "--top-k", "2"], ["gallery", "remove", "obama"]):
        assert facecli(db, *args, env={"FACECLI_EXACT_MAX": "0"}).returncode == 0, args
    import psycopg

    with psycopg.connect(pg.admin_url(database)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM public.ran").fetchone()[0] == 0


def test_a_reader_holding_the_lock_cannot_block_writers_forever(pg, db, images):
    import psycopg

    database = database_name(db)
    assert facecli(db, "enroll", "obama", str(images / "obama.jpg")).returncode == 0
    pg.sql([f"GRANT USAGE ON SCHEMA facecli TO {READER}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA facecli TO {READER}"], database=database)
    from tests.helpers.postgres import READER_PASSWORD

    with psycopg.connect(pg.tcp_url(READER, READER_PASSWORD, database), autocommit=True) as squatter:
        squatter.execute("SELECT pg_advisory_lock(%s::int, %s::int)", (0x46434C49, 1))  # the enroll lock, forever
        start = time.monotonic()
        proc = facecli(db, "enroll", "biden", str(images / "biden.jpg"), env={"FACECLI_LOCK_TIMEOUT": "2"})
        waited = time.monotonic() - start
        one_line_error(proc, "cannot write", "stayed locked by another connection for 2 s", "FACECLI_LOCK_TIMEOUT")
        assert waited < 60
    assert facecli(db, "enroll", "biden", str(images / "biden.jpg")).returncode == 0  # free again
