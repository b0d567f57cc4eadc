"""The package's layers, read from its source: no import circle, function-local imports only where they defer a
heavy or optional library (and say so), no module past 500 lines."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "facecli"
#: what a function may import late: the libraries that cost a noticeable share of a command's start, or that an
#: extra installs (rich.progress: only when a bar is shown)
HEAVY = {"numpy", "cv2", "onnxruntime", "psycopg", "usearch", "matplotlib", "onnx", "tensorflow", "tf2onnx",
         "rich.progress", "icu", "exiv2"}
MAX_LINES = 500


@cache
def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _resolve(name: str) -> str | None:
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def imports(module: str) -> list[tuple[ast.stmt, str, bool]]:
    """(statement, what it imports, whether it is inside a function) for every import outside TYPE_CHECKING; a
    ``from package import module`` imports that module."""
    path = modules()[module]
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    local = {id(n) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(fn) if n is not fn}
    found = []
    for node in ast.walk(tree):
        if id(node) in skip or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules() else base for a in node.names]
        found += [(node, name, id(node) in local) for name in names]
    return found


def heavy(module: str, seen: frozenset[str] = frozenset()) -> bool:
    """Whether importing ``module`` loads a heavy library (through its module-level imports, or its packages')."""
    seen = seen | {module}
    parent = module.rpartition(".")[0]
    if parent and parent not in seen and heavy(parent, seen):
        return True
    for _, name, late in imports(module):
        if late:
            continue
        if name.split(".")[0] != "facecli":
            if name in HEAVY or name.split(".")[0] in HEAVY:
                return True
        elif (target := _resolve(name)) and target not in seen and heavy(target, seen):
            return True
    return False


def _lazy_names(module: str) -> bool:
    """A package whose names are imported on first use (PEP 562): importing a name from it loads its module."""
    return "def __getattr__" in modules()[module].read_text()


def test_no_import_circle():
    graph = {m: {t for _, n, _ in imports(m) if (t := _resolve(n)) and t != m} for m in modules()}
    state: dict[str, int] = {}
    circles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                circles.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not circles, f"import circles: {circles[:3]}"


@pytest.mark.parametrize("module", sorted(modules()))
def test_local_imports_only_defer_heavy_libraries_and_say_why(module):
    lines = modules()[module].read_text().splitlines()
    for node, name, late in imports(module):
        if not late:
            continue
        where = f"{modules()[module].relative_to(PACKAGE.parent)}:{node.lineno} imports {name}"
        if name.split(".")[0] == "facecli":
            target = _resolve(name)
            assert target and (heavy(target) or _lazy_names(target)), f"{where}: light, import it at the top"
        else:
            assert name in HEAVY or name.split(".")[0] in HEAVY, f"{where}: light, import it at the top"
        row = node.lineno - 2  # the line above, then up over the imports (and blank lines) of the same block
        while row > 0 and (not lines[row].strip() or lines[row].strip().startswith(("from ", "import "))):
            row -= 1
        assert lines[row].strip().startswith("#") or "#" in lines[node.lineno - 1], \
            f"{where}: say why it is imported late"


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_module_past_500_lines(module):
    n = len(modules()[module].read_text().splitlines())
    assert n <= MAX_LINES, f"{module} has {n} lines: split it by what it does"
