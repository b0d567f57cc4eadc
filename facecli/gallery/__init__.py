"""The gallery: enrolled people and their face templates, behind one interface (``base.Gallery``).

``open_gallery`` picks the backend from the location: a path is an SQLite
file (``sqlite.SqliteGallery``, the embedded default). Every backend records
the model and embedding size it was built with and its schema version, and
refuses a mismatch.
"""

from __future__ import annotations

from pathlib import Path

from facecli.gallery.base import Gallery


def open_gallery(location: str | Path, model: str | None = None, create: bool = False, write: bool = False,
                 strict: bool = True) -> Gallery:
    """Open the gallery at ``location`` for ``model`` embeddings (None: whatever model it was built with).

    It is opened read-only unless ``write`` (changing it) or ``create`` (a
    missing gallery is created; ``model`` is then required; otherwise a
    missing one is an error that says how to make it). A gallery whose
    contents look tampered with is refused unless not ``strict`` (for
    ``gallery check``, which reports what is wrong).
    """
    from facecli.gallery.sqlite import SqliteGallery

    return SqliteGallery.open(Path(location), model, create, write, strict)


def model_of(location: str | Path) -> str | None:
    """The model an existing gallery was built with; None when there is none (``open_gallery`` says why)."""
    from facecli.gallery.sqlite import SqliteGallery

    return SqliteGallery.model_of(Path(location))


__all__ = ["Gallery", "model_of", "open_gallery"]
