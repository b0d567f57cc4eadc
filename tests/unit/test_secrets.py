"""Passwords in a database URL are never shown, whatever they hold (issue 24)."""

from __future__ import annotations

import pytest

from facecli.gallery.locations import mask_url

URLS = [
    ("postgresql://u:pa/ss-word@host/db", "postgresql://u:***@host/db", ["pa/ss-word", "ss-word@host"]),
    ("postgresql://u:p@ss@word@host/db", "postgresql://u:***@host/db", ["p@ss@word", "ss@word"]),
    ("postgresql://u@host/db?sslpassword=Ssl-Key-77&sslmode=require",
     "postgresql://u@host/db?sslpassword=***&sslmode=require", ["Ssl-Key-77"]),
    ("postgres://u:plain-pw@h:5432/db?password=other-pw", "postgres://u:***@h:5432/db?password=***",
     ["plain-pw", "other-pw"]),
]


@pytest.mark.parametrize(("url", "masked", "secrets"), URLS)
def test_every_password_is_masked_whole(url, masked, secrets):
    assert mask_url(url) == masked
    assert not any(s in mask_url(url) for s in secrets)


@pytest.mark.parametrize(("url", "masked", "secrets"), URLS)
def test_driver_messages_lose_every_password(url, masked, secrets):
    pytest.importorskip("psycopg", reason="the [postgres] extra is not installed")
    from facecli.gallery.pgconnect import one_line

    message = f'connection to "{url}" failed: password "{secrets[0]}" rejected; tail {secrets[-1]}'
    assert not any(s in one_line(RuntimeError(message), url) for s in secrets)
