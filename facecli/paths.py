"""Where facecli keeps its files (XDG base directories, overridable by env)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: What each model is and how it is built and fed: package data, the same for every install.
MANIFEST = PACKAGE_DIR / "manifest.json"


def cache_dir() -> Path:
    """Downloads, the build-only environment, converted models, optimised graphs: safe to delete, rebuilt on demand."""
    if env := os.environ.get("FACECLI_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "facecli"


def data_dir() -> Path:
    """Per-user data: the default gallery and the built models."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "facecli"


def models_dir() -> Path:
    """The folder of the built model files: ``FACECLI_MODELS``, else ``$XDG_DATA_HOME/facecli/models``.

    One rule for every install (pipx, pip, editable): the files are per-user
    data, built by ``facecli models build``, never package data. The checkout's
    Makefile and test suite set ``FACECLI_MODELS`` to its git-ignored ``models/``.
    """
    if env := os.environ.get("FACECLI_MODELS"):
        return Path(env)
    return data_dir() / "models"


def default_gallery() -> Path:
    """``FACECLI_GALLERY`` or ``gallery.db`` in the user's data directory."""
    if env := os.environ.get("FACECLI_GALLERY"):
        return Path(env)
    return data_dir() / "gallery.db"


def lfw_dir() -> Path | None:
    """``FACECLI_LFW``: the LFW benchmark folder (``pairs.txt``, ``images/``) that ``eval lfw`` and
    ``eval openset`` read when no path is given; None when it is not set."""
    env = os.environ.get("FACECLI_LFW")
    return Path(env) if env else None
