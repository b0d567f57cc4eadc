"""What a gallery needs of the database it lives in: the small part that differs between a file and a server.

``store.Gallery`` writes every query once (``dialect``); a backend runs
them and owns what truly differs: how the database is reached, created and
made private (SQLite: a 0600 file linked into place, WAL; PostgreSQL: a
connection, the pgvector extension), how writers are serialised (SQLite's
BEGIN IMMEDIATE; an advisory lock), how several reads see one state, where
the schema version is kept, what "tampered with" means for its catalogue,
and which index proposes candidates for 1:N above ``search.EXACT_MAX``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from facecli.errors import FaceCliError

if TYPE_CHECKING:
    from facecli.gallery.dialect import Dialect
    from facecli.gallery.search import CandidateIndex
    from facecli.gallery.store import Gallery


def lock_timeout() -> float:
    """Seconds a writer waits for another writer (or anyone holding the gallery's lock) before it gives up with
    one line: ``FACECLI_LOCK_TIMEOUT``, else 60."""
    try:
        value = float(os.environ.get("FACECLI_LOCK_TIMEOUT", "60"))
    except ValueError:
        value = -1.0
    if not 0 < value <= 86_400:
        raise FaceCliError("FACECLI_LOCK_TIMEOUT", f"{os.environ.get('FACECLI_LOCK_TIMEOUT')!r} is not a number of "
                                                   "seconds between 0 and 86400")
    return value


class Backend(ABC):
    dialect: Dialect
    location: str  # how messages name the gallery (a path, or a URL without its password)

    @abstractmethod
    def run(self, sql: str, params: tuple | list = (), vectors: bool = False) -> Any:
        """Execute one statement (in this dialect); a cursor. ``vectors``: its result holds templates."""

    @abstractmethod
    def run_each(self, sql: str, rows: list[tuple]) -> list[tuple | None]:
        """Execute an INSERT … RETURNING once per row (in one round trip where the driver can); per row, the row
        it returned, or None when it inserted nothing."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """A write transaction, serialised with every other writer of the gallery; a driver error inside it
        becomes one line "cannot write: …"."""

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[None]:
        """Several reads that see one state of the gallery."""

    @abstractmethod
    def errors(self) -> AbstractContextManager[None]:
        """A driver error inside becomes one GalleryError line naming the gallery (and never a password)."""

    @abstractmethod
    def schema_version(self, writing: bool = False) -> int:
        """The schema version; ``writing`` (in a transaction that may upgrade it): read under the lock that
        serialises upgrades."""

    @abstractmethod
    def set_version(self, version: int) -> None: ...

    @abstractmethod
    def lock_enrolls(self) -> None:
        """Serialise enrolls until the transaction ends (one photo stays one person's)."""

    @abstractmethod
    def integrity(self, rows: bool = True) -> list[str]:
        """The database's own view of damage (page corruption, broken references, invalid indexes); ``rows``:
        the tables are as facecli made them, so their rows can be read too."""

    @abstractmethod
    def foreign(self, version: int, dim: int) -> list[str]:
        """Schema objects facecli did not make at ``version`` (or lacks, or that were changed): [] when none."""

    @abstractmethod
    def size(self) -> int:
        """Bytes the gallery takes."""

    @abstractmethod
    def search_index(self, gallery: Gallery, log: Callable[[str], None]) -> CandidateIndex:
        """The approximate index that proposes candidates for large galleries, up to date."""

    @abstractmethod
    def close(self) -> None: ...

