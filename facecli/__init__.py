"""facecli: face verification and identification, from the command line or from Python.

    import facecli

    engine = facecli.load()                       # model and device as in the CLI
    faces = engine.faces("photo.jpg")             # or an HxWx3 uint8 BGR array (rgb=True: RGB)
    print(faces[0])                               # Face(index=0, box=(...), score=0.999, embedding=<640-d>)
    facecli.distance(faces[0], engine.faces("other.jpg")[0])   # what verify compares against tau
    with facecli.open_gallery() as gallery:       # the CLI's gallery; or a path, postgresql://..., ":memory:"
        decisions = engine.identify_faces(gallery, faces)

The values the API returns (``Face``, ``Verification``, ``Decision``...) are
importable from here to annotate with; ``dir(facecli)`` lists the API.
Importing the package is cheap on purpose: numpy, OpenCV and onnxruntime are
imported by the modules that need them, when they are first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from facecli.version import __version__

if TYPE_CHECKING:
    from facecli.engine import Engine, load
    from facecli.errors import BadValue, FaceCliError, GalleryError, InputError, ModelError
    from facecli.gallery import Gallery, open_gallery
    from facecli.matching import distance
    from facecli.tracking import Event
    from facecli.values import (
        Candidate,
        ClusteredFace,
        Decision,
        Detection,
        EnrollResult,
        Face,
        ImageResult,
        Match,
        PersonInfo,
        Template,
        Threshold,
        Verification,
    )
    from facecli.video import Frame, Video

_PUBLIC = {
    "facecli.engine": ("Engine", "load"),
    "facecli.gallery": ("Gallery", "open_gallery"),
    "facecli.matching": ("distance",),
    "facecli.errors": ("FaceCliError", "InputError", "ModelError", "GalleryError", "BadValue"),
    "facecli.values": ("Face", "Detection", "ImageResult", "Decision", "Candidate", "Verification", "Threshold",
                       "Template", "PersonInfo", "Match", "EnrollResult", "ClusteredFace"),
    "facecli.video": ("Frame", "Video"),
    "facecli.tracking": ("Event",),
}
_MODULE_OF = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = [  # what _PUBLIC names, and the version (tests/library/test_api_shape.py checks that they agree)
    "BadValue", "Candidate", "ClusteredFace", "Decision", "Detection", "Engine", "EnrollResult", "Event", "Face",
    "FaceCliError", "Frame", "Gallery", "GalleryError", "ImageResult", "InputError", "Match", "ModelError",
    "PersonInfo", "Template", "Threshold", "Verification", "Video", "__version__", "distance", "load",
    "open_gallery",
]


def __getattr__(name: str):
    """The public API, imported on first use (PEP 562), so ``import facecli`` stays light."""
    if name in _MODULE_OF:
        return getattr(import_module(_MODULE_OF[name]), name)
    raise AttributeError(f"module 'facecli' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The API as well as what is imported already: the lazy names are not module globals until first used."""
    return sorted(set(globals()) | set(__all__))
