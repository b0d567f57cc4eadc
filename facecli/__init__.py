"""facecli: face verification and identification, from the command line or from Python.

    import facecli

    engine = facecli.load()                       # model and device as in the CLI
    faces = engine.faces("photo.jpg")             # or an HxWx3 uint8 BGR array
    with facecli.open_gallery("gallery.db") as gallery:
        decisions = gallery.identify(faces)

Importing the package is cheap on purpose: numpy, OpenCV and onnxruntime are
imported by the modules that need them, when they are first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facecli.version import __version__

if TYPE_CHECKING:
    from facecli.engine import Engine, load
    from facecli.errors import FaceCliError
    from facecli.gallery import Gallery, open_gallery

_PUBLIC = {"load": "facecli.engine", "Engine": "facecli.engine", "open_gallery": "facecli.gallery",
           "Gallery": "facecli.gallery", "FaceCliError": "facecli.errors"}
__all__ = ["Engine", "FaceCliError", "Gallery", "__version__", "load", "open_gallery"]


def __getattr__(name: str):
    """The public API, imported on first use (PEP 562), so ``import facecli`` stays light."""
    if name in _PUBLIC:
        from importlib import import_module

        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'facecli' has no attribute {name!r}")
