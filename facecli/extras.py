"""How to add an optional part of facecli (an extra), said for the way facecli was installed.

``pip install 'facecli[postgres]'`` is wrong advice for most users: in a pipx install it would install into
whatever ``pip`` is first on the PATH, not into facecli's own environment. The hint names the command that
works: ``pipx inject`` for pipx, ``uv tool install --with`` for uv, ``pip install -e '.[X]'`` for a
checkout, and otherwise this very interpreter's pip.
"""

from __future__ import annotations

import re
import shlex
import sys
from importlib import metadata
from pathlib import Path


def requirements(extra: str) -> list[str]:
    """What the extra ``extra`` of the installed facecli adds, as pip requirement strings."""
    wanted = re.compile(rf"""extra\s*==\s*["']{re.escape(extra)}["']""")
    found = []
    for req in metadata.requires("facecli") or []:
        spec, _, marker = req.partition(";")
        if wanted.search(marker):
            found.append(spec.strip().replace(" ", ""))
    return found


def _checkout() -> Path | None:
    """The source checkout this facecli runs from (an editable install, ``pip install -e .``), if it does."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and "site-packages" not in root.parts else None


def install_hint(extra: str, prefix: str | None = None) -> str:
    """The command that adds ``extra`` to this facecli (``prefix``: its environment, default ``sys.prefix``)."""
    parts = Path(prefix or sys.prefix).parts
    needed = " ".join(shlex.quote(r) for r in requirements(extra)) or shlex.quote(f"facecli[{extra}]")
    if "pipx" in parts and "venvs" in parts:
        return f"pipx inject facecli {needed}"
    if "uv" in parts and "tools" in parts:
        return f"uv tool install facecli --reinstall --with {needed}"
    checkout = _checkout() if prefix is None else None
    if checkout is not None:
        return f"{shlex.quote(sys.executable)} -m pip install -e {shlex.quote(f'{checkout}[{extra}]')}"
    python = sys.executable if prefix is None else str(Path(prefix) / "bin" / "python")
    return f"{shlex.quote(python)} -m pip install {shlex.quote(f'facecli[{extra}]')}"
