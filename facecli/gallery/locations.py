"""Where a gallery is: a file path, or a PostgreSQL database URL that never shows its password.

A ``--gallery`` value (or ``FACECLI_GALLERY``, or the argument of
``facecli.open_gallery``) is a database when it starts with ``postgresql://``
or ``postgres://``; anything else is a path. The URL is kept as text (a
``Path`` would fold its ``//``) inside a ``DatabaseURL``, whose ``str()`` is
the URL with the password masked, so that every message, table and JSON row
that shows the location shows it masked. This module is light on purpose:
it never imports the database driver.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

URL_PREFIXES = ("postgresql://", "postgres://")


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (in the user info, and in a ``password=`` or
    ``sslpassword=`` parameter).

    The user info is taken to run to the last ``@`` before the parameters, whatever it holds: a password
    with a ``/`` or an ``@`` in it (which libpq would read otherwise) is still masked whole.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    before, question, params = rest.partition("?")
    at = before.rfind("@")
    if at >= 0:
        user, colon, _ = before[:at].partition(":")
        if colon:
            before = f"{user}:***{before[at:]}"
    params = re.sub(r"(^|&)((?:ssl)?password=)[^&]*", r"\1\2***", params)
    return f"{scheme}{sep}{before}{question}{params}"


class DatabaseURL:
    """A gallery in a database: ``str()`` shows it with the password masked; ``url`` is the real URL."""

    __slots__ = ("url",)

    def __init__(self, url: str) -> None:
        self.url = url

    def __str__(self) -> str:
        return mask_url(self.url)

    def __repr__(self) -> str:
        return f"DatabaseURL({mask_url(self.url)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DatabaseURL) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)


Location = Path | DatabaseURL


def is_database_url(value: object) -> bool:
    return isinstance(value, DatabaseURL) or (isinstance(value, str) and value.startswith(URL_PREFIXES))


def as_location(value: str | os.PathLike | DatabaseURL) -> Location:
    """A gallery location from what a user gave: a ``DatabaseURL`` for ``postgresql://…``, else a ``Path``."""
    if isinstance(value, DatabaseURL):
        return value
    if isinstance(value, str) and value.startswith(URL_PREFIXES):
        return DatabaseURL(value)
    return Path(value)
