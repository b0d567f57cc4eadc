"""Where facecli keeps its files (XDG base directories, overridable by env)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def cache_dir() -> Path:
    """Downloads and the build-only environment: safe to delete, rebuilt on demand."""
    if env := os.environ.get("FACECLI_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "facecli"


def data_dir() -> Path:
    """Per-user data (the default gallery)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "facecli"


def models_dir() -> Path:
    """The folder holding ``manifest.json`` and the built model files.

    ``FACECLI_MODELS`` wins; otherwise the checkout's ``models/`` next to the
    package (the supported editable install).
    """
    if env := os.environ.get("FACECLI_MODELS"):
        return Path(env)
    return PACKAGE_DIR.parent / "models"


def default_gallery() -> Path:
    """``FACECLI_GALLERY`` or ``gallery.db`` in the user's data directory."""
    if env := os.environ.get("FACECLI_GALLERY"):
        return Path(env)
    return data_dir() / "gallery.db"
