"""Expected failures: each carries a one-line message that names its subject.

The CLI turns any ``FaceCliError`` into that line on stderr and exit code 2.
The library speaks of values (``tau 5.0``), never of command-line flags;
``BadValue`` says which setting a value was for, so the CLI can name its
option instead (``--tau 5.0``).
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


class OutOfMemory(FaceCliError):
    """Memory ran out while handling an image or loading a model: perhaps for the image itself, perhaps because
    other work beside it (another image being decoded) held the memory, so the pipeline tries such an image
    again alone before reporting it."""


class GalleryError(FaceCliError):
    """A gallery that is missing, foreign, locked or inconsistent."""


class SeveralFaces(InputError):
    """A photo that should show one face shows several (enrolling it would guess who is meant)."""

    def __init__(self, path: str, count: int, advice: str = "") -> None:
        super().__init__(path, f"{count} faces found" + (f"; {advice}" if advice else ""))
        self.count = count


class FaceTooSmall(InputError):
    """A face smaller than identification needs: enrolled, it would be a template of a face never named."""

    def __init__(self, path: str, width: float, height: float, min_face: float) -> None:
        super().__init__(path, f"the face is {width:.0f}x{height:.0f} pixels, under the {min_face:g} px "
                               "that identification needs")


class ModelMismatch(GalleryError):
    """A gallery built with one model, opened for another: their embeddings cannot be compared."""

    def __init__(self, location: str, built_with: str, dim: str, requested: str, requested_dim: int) -> None:
        super().__init__(location, f"built with model {built_with} ({dim}-d); this run uses {requested} "
                                   f"({requested_dim}-d)")
        self.built_with = built_with


class HeadMismatch(GalleryError):
    """Faces matched through another projection head (or none) than the one the gallery is used with.

    ``expected`` is the path of the gallery's head (None: it is used without
    one), ``given`` that of the faces' head (None: they have none); ``kept``:
    the gallery keeps its head (an engine loaded with ``gallery=`` uses it).
    """

    def __init__(self, location: str, expected: str | None, expected_sha256: str | None, given: str | None,
                 given_sha256: str | None, kept: bool = False) -> None:
        gallery = f"used with the head {expected} (sha256 {expected_sha256[:12]}{', kept in it' if kept else ''})" \
            if expected is not None else "used without a head"
        faces = "without a head" if given is None else f"with the head {given} (sha256 {given_sha256[:12]})"
        hint = " (facecli.load(gallery=...) loads an engine with the gallery's own)" if kept and given is None else ""
        super().__init__(location, f"{gallery}; these faces are embedded {faces}{hint}")
        self.expected = expected
        self.given = given
        self.kept = kept


class BadValue(FaceCliError):
    """A setting outside what the library accepts: ``setting`` names it (``tau``, ``gallery_size``)."""

    def __init__(self, setting: str, value: object, reason: str) -> None:
        super().__init__(f"{setting} {value}", reason)
        self.setting = setting
        self.value = value


class LooseThreshold(BadValue):
    """A tau so large that nearly every face would match: accepted only when forced."""
