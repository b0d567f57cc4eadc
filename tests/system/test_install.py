"""facecli as a user installs it (issue 16): a wheel, a new virtual environment, no checkout.

The wheel is built by pip from a copy of what a source distribution holds (pyproject.toml,
README.md, facecli/), so nothing else of the checkout can slip in, and installed with pip into
a new virtual environment in a temporary folder. Its third-party dependencies are not fetched
again (onnxruntime-gpu alone is ~340 MB installed): the new environment sees, through a .pth
file, links to exactly the distributions facecli's metadata requires, transitively, taken from
this test's environment (not facecli itself, nor its editable finder, nor anything undeclared),
plus pip, shared as pipx shares it; pip installs the wheel with --no-index, so a requirement
those do not satisfy fails here.
The commands run from a folder outside the checkout with no PYTHONPATH, no FACECLI_MODELS and a
private XDG_DATA_HOME; `facecli models build` may reuse the build cache (downloads and converted
files), and every file it places is verified by sha256, here too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import facecli
from facecli.models import manifest
from facecli.sources import sha256_file
from tests.helpers import ROOT

PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")


@dataclass
class Installed:
    wheel: Path
    venv: Path
    work: Path  # the current folder of every command: outside the checkout, holding the photos
    data: Path  # XDG_DATA_HOME
    env: dict[str, str]

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.venv / "bin" / "facecli"), *args], cwd=self.work, capture_output=True,
                              text=True, env={**self.env, **(env or {})}, timeout=900)


def _build_wheel(tmp: Path) -> Path:
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "facecli", src / "facecli", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp / "dist"),
                           str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp / "dist").glob("facecli-*.whl")
    return wheel


def _requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(f"facecli-{facecli.__version__}.dist-info/METADATA").decode()
    return re.findall(r"^Requires-Dist: (.+)$", meta, flags=re.M)


def _dependency_links(requirements: list[str], folder: Path) -> None:
    """Links in ``folder`` to every file of the distributions these requirements need, transitively."""
    folder.mkdir()
    todo = [(Requirement(r), "") for r in requirements]
    seen: set[str] = set()
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue  # an extra nobody asked for, or another platform
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        dist = metadata.distribution(req.name)  # PackageNotFoundError: this environment lacks a requirement
        assert dist.files, f"{req.name} lists no files"
        for top in {f.parts[0] for f in dist.files if f.parts[0] not in ("..", "__pycache__")}:
            link = folder / top
            if not link.exists():
                link.symlink_to(Path(dist.locate_file(top)))
        todo += [(Requirement(r), e) for r in dist.requires or [] for e in (req.extras or {""})]


@pytest.fixture(scope="module")
def installed(tmp_path_factory, images: Path) -> Installed:
    tmp = tmp_path_factory.mktemp("install")
    wheel = _build_wheel(tmp)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    _dependency_links([*_requirements(wheel), "pip"], tmp / "dependencies")
    (site / "dependencies.pth").write_text(f"{tmp / 'dependencies'}\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FACECLI_") and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    if "FACECLI_CACHE" in os.environ:  # the build cache may be reused
        env["FACECLI_CACHE"] = os.environ["FACECLI_CACHE"]
    env |= {"XDG_DATA_HOME": str(tmp / "data"), "FACECLI_DEVICE": "cpu"}
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index", "--quiet",
                           str(wheel)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    work = tmp / "work"
    work.mkdir()
    for name in PHOTOS:
        shutil.copy2(images / name, work / name)
    return Installed(wheel, venv, work, tmp / "data", env)


def test_the_wheel_carries_the_manifest_and_build_scripts_and_no_weights(installed):
    with zipfile.ZipFile(installed.wheel) as zf:
        names = set(zf.namelist())
        entry_points = zf.read(f"facecli-{facecli.__version__}.dist-info/entry_points.txt").decode()
    assert {"facecli/manifest.json", "facecli/modelbuild/convert_facenet.py", "facecli/modelbuild/dequantize_onnx.py",
            "facecli/modelbuild/convert_tflite.py", "facecli/modelbuild/canonical.py",
            "facecli/cli/__init__.py", "facecli/gallery/sqlite.py"} <= names
    assert not [n for n in names if n.endswith((".onnx", ".pb", ".xml", ".jpg", ".png", ".pyc"))]
    assert not [n for n in names if n.split("/")[0] not in ("facecli", f"facecli-{facecli.__version__}.dist-info")]
    assert "facecli = facecli.cli:main" in entry_points


def test_the_installed_facecli_comes_from_its_environment_only(installed):
    probe = ("import json, sys, facecli.cli, facecli.paths\n"
             "print(json.dumps([facecli.__file__, str(facecli.paths.MANIFEST), sys.path, sorted(sys.modules)]))")
    proc = subprocess.run([str(installed.venv / "bin" / "python"), "-c", probe], cwd=installed.work,
                          capture_output=True, text=True, env=installed.env, check=True)
    package, manifest_file, path, modules = json.loads(proc.stdout)
    assert Path(package).is_relative_to(installed.venv) and Path(manifest_file).is_file()
    assert not [p for p in path if p and Path(p).resolve().is_relative_to(ROOT)]
    assert "cv2" not in modules and "onnxruntime" not in modules  # the CLI stays light to start


def test_without_models_a_command_exits_2_naming_the_command_that_builds_them(installed, tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path)}
    proc = installed.run("verify", "obama2.jpg", "obama3.jpg", env=env)
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "run `facecli models build`" in proc.stderr
    assert str(tmp_path / "facecli" / "models") in proc.stderr
    listing = installed.run("models", "list", "--json", env=env)
    rows = [json.loads(line) for line in listing.stdout.splitlines()]
    assert listing.returncode == 2 and {r["state"] for r in rows} == {"missing"}
    assert {Path(r["path"]).parent for r in rows} == {tmp_path / "facecli" / "models"}


def test_models_build_then_verify_and_identify_outside_the_checkout(installed):
    folder = installed.data / "facecli" / "models"
    first = installed.run("models", "build")
    assert first.returncode == 0, first.stderr
    assert str(folder) in first.stderr and first.stdout == ""
    for spec in manifest().values():  # verified here too, not only by facecli
        assert sha256_file(folder / spec.file) == spec.sha256, spec.name
    stamps = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}

    again = installed.run("models", "build")  # idempotent: nothing rebuilt, nothing rewritten
    assert again.returncode == 0, again.stderr
    assert all(f"{name}: ok" in again.stderr for name in manifest())
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()} == stamps

    listing = installed.run("models", "list", "--json")
    rows = [json.loads(line) for line in listing.stdout.splitlines()]
    assert listing.returncode == 0 and {r["state"] for r in rows} == {"ok"}
    assert {Path(r["path"]).parent for r in rows} == {folder}

    same = installed.run("verify", "obama2.jpg", "obama3.jpg", "--json")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["same"] is True
    for name, photo in (("obama", "obama.jpg"), ("biden", "biden.jpg")):
        assert installed.run("enroll", name, photo).returncode == 0
    assert (installed.data / "facecli" / "gallery.db").is_file()  # the default gallery: user data
    who = installed.run("identify", "obama3.jpg", "--json")
    assert who.returncode == 0, who.stderr
    assert [r["name"] for r in map(json.loads, who.stdout.splitlines())] == ["obama"]


def test_version_and_verbose_version(installed):
    proc = installed.run("--version")
    assert proc.returncode == 0 and proc.stdout == f"facecli {facecli.__version__}\n"
    assert installed.wheel.name.startswith(f"facecli-{facecli.__version__}-")  # pyproject reads it from the package
    verbose = installed.run("--version", "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    import cv2
    import onnxruntime

    assert f"onnxruntime {onnxruntime.__version__}" in verbose.stdout and "CPUExecutionProvider" in verbose.stdout
    assert f"opencv {cv2.__version__}" in verbose.stdout
    for spec in manifest().values():
        assert re.search(rf"^  {re.escape(spec.name)} .*{spec.sha256[:12]}", verbose.stdout, flags=re.M), spec.name


def test_shell_completion_in_bash_zsh_and_fish(installed, tmp_path):
    """--install-completion, run from bash, installs bash's script; bash itself, with that script,
    completes a command, a sub-command and a choice. zsh's and fish's scripts call facecli the same
    way, with their own variables."""
    env = {**installed.env, "HOME": str(tmp_path), "PATH": f"{installed.venv / 'bin'}:{os.environ['PATH']}"}
    probe = ('facecli --install-completion >&2; true\n'  # the shell is detected: bash, the parent process
             'source ~/.bash_completions/facecli.sh\n'
             'for words in "facecli ident" "facecli models b" "facecli identify --device cu"; do\n'
             '  COMP_WORDS=($words); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n'
             '  _facecli_completion facecli; echo "${COMPREPLY[*]}"\n'
             'done\n')
    bash = subprocess.run(["bash", "--norc", "-c", probe], cwd=installed.work, capture_output=True, text=True,
                          env=env)
    assert bash.stdout.splitlines() == ["identify", "build", "cuda"], bash.stderr
    assert "source" in (tmp_path / ".bashrc").read_text() and "facecli.sh" in (tmp_path / ".bashrc").read_text()
    zsh = installed.run(env={"_FACECLI_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "facecli ident"})
    assert '"identify"' in zsh.stdout
    fish = installed.run(env={"_FACECLI_COMPLETE": "complete_fish", "_TYPER_COMPLETE_ARGS": "facecli ident",
                              "_TYPER_COMPLETE_FISH_ACTION": "get-args"})
    assert fish.stdout.startswith("identify\t")
