"""The gallery: enrolled people and their face templates, behind one interface (``base.Gallery``).

``open_gallery`` picks the backend from the location: a path is an SQLite
file (``sqlite.SqliteGallery``, the embedded default); ``postgresql://…`` (or
``postgres://…``) is a PostgreSQL database with pgvector
(``postgres.PostgresGallery``, for a gallery shared by many hosts; its driver
is imported only then). Every backend records the model and embedding size
it was built with and its schema version, and refuses a mismatch.
"""

from __future__ import annotations

import os
from types import ModuleType

from facecli.errors import GalleryError
from facecli.gallery.base import Gallery
from facecli.gallery.locations import DatabaseURL, Location, as_location, is_database_url, mask_url


def _postgres(where: DatabaseURL) -> ModuleType:
    """The PostgreSQL backend, or one line saying how to install its driver."""
    try:
        from facecli.gallery import postgres
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("psycopg"):
            raise
        raise GalleryError(str(where), "a PostgreSQL gallery needs psycopg: pip install 'facecli[postgres]'") \
            from None
    return postgres


def open_gallery(location: str | os.PathLike | DatabaseURL, model: str | None = None, create: bool = False,
                 write: bool = False, strict: bool = True) -> Gallery:
    """Open the gallery at ``location`` (a path, or a PostgreSQL URL) for ``model`` embeddings (None: whatever
    model it was built with).

    It is opened read-only unless ``write`` (changing it) or ``create`` (a
    missing gallery is created; ``model`` is then required; otherwise a
    missing one is an error that says how to make it). A gallery whose
    contents look tampered with is refused unless not ``strict`` (for
    ``gallery check``, which reports what is wrong).
    """
    where = as_location(location)
    if isinstance(where, DatabaseURL):
        return _postgres(where).PostgresGallery.open(where, model, create, write, strict)
    from facecli.gallery.sqlite import SqliteGallery

    return SqliteGallery.open(where, model, create, write, strict)


def model_of(location: str | os.PathLike | DatabaseURL) -> str | None:
    """The model an existing gallery was built with; None when there is none (``open_gallery`` says why)."""
    where = as_location(location)
    if isinstance(where, DatabaseURL):
        try:
            return _postgres(where).PostgresGallery.model_of(where)
        except GalleryError:
            return None
    from facecli.gallery.sqlite import SqliteGallery

    return SqliteGallery.model_of(where)


def is_new(location: str | os.PathLike | DatabaseURL) -> bool:
    """Whether no gallery is there yet, so that the first enroll creates it: no file (or an empty one an older
    facecli began), or a database without facecli's schema. An unreachable database is a GalleryError."""
    where = as_location(location)
    if isinstance(where, DatabaseURL):
        return not _postgres(where).PostgresGallery.exists(where)
    return not os.path.lexists(where) or (where.is_file() and where.stat().st_size == 0)


__all__ = ["DatabaseURL", "Gallery", "Location", "as_location", "is_database_url", "is_new", "mask_url",
           "model_of", "open_gallery"]
