"""Expected failures: each carries a one-line message that names its subject.

The CLI turns any ``FaceCliError`` into that line on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class FaceCliError(Exception):
    """A failure the user can act on, reported as ``subject: reason``."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(f"{subject}: {reason}")
        self.subject = subject
        self.reason = reason


class InputError(FaceCliError):
    """An input image or path that cannot be used."""


class ModelError(FaceCliError):
    """A model file that is missing, tampered with or cannot be loaded."""


class GalleryError(FaceCliError):
    """A gallery file that is missing, foreign, locked or inconsistent."""
