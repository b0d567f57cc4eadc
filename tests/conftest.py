"""Shared fixtures: the real models, the real photos, the installed command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from facecli.errors import ModelError
from facecli.models import manifest, verified_path

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
# The suite runs on the checkout's models/ (built by `make models`) unless FACECLI_MODELS says
# otherwise, like the Makefile; an installed facecli uses $XDG_DATA_HOME/facecli/models.
os.environ.setdefault("FACECLI_MODELS", str(TESTS.parent / "models"))

from fetch_images import fetch  # noqa: E402

FACECLI = str(Path(sys.executable).with_name("facecli"))


def json_rows(stdout: str) -> list[dict]:
    """Parse JSON Lines output; fails if any stdout line is not JSON."""
    return [json.loads(line) for line in stdout.splitlines()]


def one_line_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    """The one ``error: ...`` line a refused command prints (exit 2, no traceback), holding every one of ``words``."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    line = proc.stderr.rstrip("\n")
    assert line.startswith("error: ") and all(w in line for w in words), line
    return line


def variant_photos(images: Path, folder: Path, longest: int, growth: float, mirror: bool, n: int = 200) -> list[Path]:
    """``n`` distinct real photos: the four portraits scaled to about ``longest`` px (growing by ``growth`` steps),
    shifted, mirrored every other 8 when ``mirror``, and re-encoded at JPEG qualities 80-94."""
    import cv2

    sources = [cv2.imread(str(images / name)) for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")]
    out = []
    for i in range(n):
        img = sources[i % 4]
        scale = longest / max(img.shape[:2]) * (1 + (i // 4) % 10 * growth)
        small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)[:, i // 40:]
        if mirror and (i // 8) % 2:
            small = small[:, ::-1]
        path = folder / f"photo{i:03d}.jpg"
        cv2.imwrite(str(path), small, [cv2.IMWRITE_JPEG_QUALITY, 80 + i % 15])
        out.append(path)
    return out


@pytest.fixture(scope="session", autouse=True)
def _models_built() -> None:
    """Stop at once, saying how to fix it, when the models have not been built."""
    try:
        for name in manifest():
            verified_path(name)
    except ModelError as exc:
        pytest.exit(f"{exc} (make test builds them)", returncode=2)


@pytest.fixture(scope="session")
def images() -> Path:
    """The face-recognition sdist photos (fetched once into tests/images)."""
    return fetch()


@pytest.fixture(scope="session")
def pipeline():
    """MTCNN + FaceNet: the tests of FaceNet's own pipeline (tests/test_sface.py covers the others)."""
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


@pytest.fixture(scope="session")
def no_face(images: Path, tmp_path_factory) -> Path:
    """A real photo region without a face: the bottom-left corner of obama.jpg (flag and desk)."""
    a = cv2.imread(str(images / "obama.jpg"))
    path = tmp_path_factory.mktemp("noface") / "flag.png"
    cv2.imwrite(str(path), a[-300:, :250])
    return path
