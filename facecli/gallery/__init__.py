"""The gallery: enrolled people and their face templates, in a file, a PostgreSQL database, or memory.

``open_gallery`` picks the backend from the location: a path is an SQLite
file (the embedded default); ``postgresql://…`` (or ``postgres://…``) is a
PostgreSQL database with pgvector, for a gallery shared by many hosts (its
driver is imported only then); ``:memory:`` lives as long as it is open.
Whatever the backend, it is one ``Gallery`` (``store``): it records the model
and embedding size it was built with and its schema version, and refuses a
mismatch. Matching against it is ``identification``'s.
"""

from __future__ import annotations

import os
from types import ModuleType

from facecli.errors import GalleryError
from facecli.extras import install_hint
from facecli.gallery.locations import DatabaseURL, Location, as_location, is_database_url, mask_url
from facecli.gallery.sqlite import SqliteBackend
from facecli.gallery.store import Creator, Gallery
from facecli.models import pipeline_spec
from facecli.paths import default_gallery

MEMORY = ":memory:"


def _postgres(where: DatabaseURL) -> ModuleType:
    """The PostgreSQL backend, or one line saying how to install its driver."""
    try:
        # psycopg: optional (the [postgres] extra), loaded only for a database gallery
        from facecli.gallery import postgres
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("psycopg"):
            raise
        raise GalleryError(str(where), f"a PostgreSQL gallery needs psycopg: {install_hint('postgres')}") \
            from None
    return postgres


def open_gallery(location: str | os.PathLike | DatabaseURL | None = None, model: str | None = None,
                 create: bool = False, write: bool = False, strict: bool = True) -> Gallery:
    """Open the gallery at ``location`` for ``model`` embeddings (None: whatever model it was built with).

    ``location``: a path, a PostgreSQL URL, or ``":memory:"``; None is the
    CLI's default (``FACECLI_GALLERY``, else ``gallery.db`` in the user's data
    folder). It is opened read-only unless ``write`` (changing it) or
    ``create`` (a missing gallery is then a new, empty one, created by its
    first write; otherwise a missing one is an error that says how to make
    it). A gallery whose contents look tampered with is refused unless not
    ``strict`` (for ``gallery check``, which reports what is wrong).
    """
    if location is None:
        location = default_gallery()
    if location == MEMORY:
        memory = SqliteBackend.memory()
        gallery = Gallery(memory, MEMORY, create=Creator(lambda m: (memory.adopt(m, _dim(m)), [])))
    elif isinstance(where := as_location(location), DatabaseURL):
        opened = _postgres(where).open_database(where, create, write, strict)
        if isinstance(opened, tuple):
            gallery = Gallery(opened[0], str(where), opened[1])
        else:  # no gallery there yet: created by the first write, on this same connection
            gallery = Gallery(SqliteBackend.memory(str(where)), str(where),
                              create=Creator(lambda m: (opened, opened.create(m, _dim(m))), opened.close))
    elif SqliteBackend.exists(where):
        db, foreign = SqliteBackend.open(where, write or create, strict)
        gallery = Gallery(db, str(where), foreign)
    elif create:
        gallery = Gallery(SqliteBackend.memory(str(where)), str(where),
                          create=Creator(lambda m: SqliteBackend.create(where, m, _dim(m))))
    else:
        raise GalleryError(str(where), "no gallery here yet; enroll someone first (facecli enroll NAME PHOTO)")
    if model is not None:
        try:
            gallery.bind(model)
        except BaseException:
            gallery.close()
            raise
    return gallery


def _dim(model: str) -> int:
    return pipeline_spec(model).dim


__all__ = ["DatabaseURL", "Gallery", "Location", "as_location", "is_database_url", "mask_url", "open_gallery"]
