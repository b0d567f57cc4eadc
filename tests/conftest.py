"""The suite's levels, and the fixtures they share: the real models, the real photos, the installed command.

tests/unit holds pure functions on hand-made values or the photos, with no model and no database server;
tests/library the Python API and library modules on the real models, photos and databases; tests/cli the
installed ``facecli`` command; tests/system the whole system (the wheel's install, memory caps, SIGKILL,
concurrency, fuzzing, LFW). Each test is marked with its level (``pytest -m unit``), from its folder. The
fixtures here that need models are used only by the levels that have them; tests/unit/conftest.py takes the
models away from its tests, and the other levels' conftests stop at once when the models have not been built.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import FACECLI, ROOT

# The suite runs on the checkout's models/ (built by `make models`) unless FACECLI_MODELS says
# otherwise, like the Makefile; an installed facecli uses $XDG_DATA_HOME/facecli/models.
os.environ.setdefault("FACECLI_MODELS", str(ROOT / "models"))

TESTS = Path(__file__).resolve().parent
LEVELS = ("unit", "library", "cli", "system")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its level, the folder it sits in."""
    for item in items:
        level = item.path.relative_to(TESTS).parts[0]
        if level in LEVELS:
            item.add_marker(level)


@pytest.fixture(scope="session")
def _models_built() -> None:
    """Stop at once, saying how to fix it, when the models have not been built (used by library, cli, system)."""
    from facecli.errors import ModelError
    from facecli.models import manifest, verified_path

    try:
        for name in manifest():
            verified_path(name)
    except ModelError as exc:
        pytest.exit(f"{exc} (make test builds them)", returncode=2)


@pytest.fixture(scope="session")
def images() -> Path:
    """The face-recognition sdist photos (fetched once into tests/images)."""
    from tests.helpers.fetch_images import fetch

    return fetch()


@pytest.fixture(scope="session")
def blink_clip() -> tuple[Path, list[range]]:
    """A real 10 s talking-face video (720x576, 30 fps) and its annotated blinks, as frame ranges (fetched once)."""
    from tests.helpers.clip import fetch_clip

    return fetch_clip()


@pytest.fixture(scope="session")
def mesh():
    """The face-mesh models (MediaPipe Face Landmarker, converted), on the CPU."""
    from facecli.facemesh import FaceMesh

    return FaceMesh(device="cpu")


@pytest.fixture(scope="session")
def yunet():
    """YuNet alone: the detector the mesh is given faces by."""
    from facecli.detectors.yunet import YuNet

    return YuNet("cpu")


@pytest.fixture(scope="session")
def pipeline():
    """MTCNN + FaceNet: the tests of FaceNet's own pipeline (tests/library/test_sface.py covers the others)."""
    from facecli.pipeline import Pipeline

    return Pipeline(model="facenet", device="cpu")


@pytest.fixture(scope="session")
def haar_pipeline():
    from facecli.pipeline import Pipeline

    return Pipeline(detector="haar", model="facenet", device="cpu")


@pytest.fixture
def run(tmp_path: Path):
    """Run the installed ``facecli`` in a subprocess with a private gallery."""
    gallery = tmp_path / "gallery.db"

    def _run(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        full_env = dict(os.environ, FACECLI_GALLERY=str(gallery), FACECLI_DEVICE="cpu", **(env or {}))
        return subprocess.run([FACECLI, *args], input=stdin, capture_output=True, text=True, env=full_env,
                              timeout=300)

    _run.gallery = gallery  # type: ignore[attr-defined]
    return _run


@pytest.fixture(scope="session")
def side_by_side(images: Path, tmp_path_factory) -> Path:
    """A real two-person photo: obama.jpg and biden.jpg placed side by side."""
    a = cv2.imread(str(images / "obama.jpg"))
    b = cv2.imread(str(images / "biden.jpg"))
    b = cv2.resize(b, (round(b.shape[1] * a.shape[0] / b.shape[0]), a.shape[0]))
    path = tmp_path_factory.mktemp("pair") / "obama_and_biden.jpg"
    cv2.imwrite(str(path), np.hstack([a, b]))
    return path


@pytest.fixture
def library(images: Path, side_by_side: Path, tmp_path: Path) -> Path:
    """A small photo library: the four sample portraits and the group photo of Obama and Biden side by side."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"):
        shutil.copyfile(images / name, folder / name)
    shutil.copyfile(side_by_side, folder / "group.jpg")
    return folder


@pytest.fixture(scope="session")
def no_face(images: Path, tmp_path_factory) -> Path:
    """A real photo region without a face: the bottom-left corner of obama.jpg (flag and desk)."""
    a = cv2.imread(str(images / "obama.jpg"))
    path = tmp_path_factory.mktemp("noface") / "flag.png"
    cv2.imwrite(str(path), a[-300:, :250])
    return path
