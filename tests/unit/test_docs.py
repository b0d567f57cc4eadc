"""The documentation holds together: links and anchors resolve, and the reference names every command and option.

Like sqlite-utils' ``test_docs.py``: a command or option added to the CLI without a line in
docs/commands.md, or a page or heading renamed under a link, fails here. Needs no model: the
command tree comes from the Typer app, which loads neither OpenCV nor onnxruntime.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import typer

from facecli.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
REFERENCE = DOCS / "commands.md"
PAGES = sorted([ROOT / "README.md", *DOCS.glob("*.md"), *(ROOT / "bench").glob("*.md")])

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^[ \t]{0,3}\[[^\]]+\]:[ \t]*<?(\S+?)>?(?:[ \t]+.*)?$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose(text: str) -> str:
    """The text without fenced code blocks (a link or heading inside one is code, not Markdown)."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lowercased, punctuation but '-' and '_' dropped, spaces as '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    """Every heading's anchor on the page; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, text in HEADING.findall(_prose(page.read_text(encoding="utf-8"))):
        base = slug(text)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return frozenset(found)


def _links() -> list[tuple[Path, str]]:
    pairs = []
    for page in PAGES:
        text = re.sub(r"`[^`\n]*`", "", _prose(page.read_text(encoding="utf-8")))  # inline code is not a link
        for target in LINK.findall(text) + REFERENCE_LINK.findall(text):
            if not SCHEME.match(target):
                pairs.append((page, target))
    return pairs


@pytest.mark.parametrize(("page", "target"), _links(),
                         ids=lambda v: str(v.relative_to(ROOT)) if isinstance(v, Path) else v)
def test_relative_link_resolves(page, target):
    path, _, anchor = target.partition("#")
    where = f"{page.relative_to(ROOT)}: link {target!r}"
    dest = (page.parent / path).resolve() if path else page
    if not dest.exists():
        pytest.fail(f"{where}: no such file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
    if anchor and dest.suffix != ".md":
        pytest.fail(f"{where}: an anchor into a file that is not Markdown")
    if anchor and anchor not in anchors(dest):
        pytest.fail(f"{where}: no heading with the anchor #{anchor} in {dest.relative_to(ROOT)}; "
                    f"its anchors: {', '.join(sorted(anchors(dest)))}")


def test_readme_links_every_page_of_the_docs():
    linked = {(ROOT / p.partition("#")[0]).resolve() for page, p in _links() if page.name == "README.md"
              and page.parent == ROOT}
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"README.md links to no docs/ page named {missing}"


# ---- the reference: every command, subcommand and option in docs/commands.md ----

def _commands() -> dict[str, list[str]]:
    """'facecli gallery list' -> its option strings ('--gallery', '--json', '-q', '--no-flip', ...)."""
    found: dict[str, list[str]] = {}

    def walk(command, path: str) -> None:
        options = []
        for param in command.params:
            if getattr(param, "param_type_name", "") != "option":
                continue
            options += [o for o in [*param.opts, *param.secondary_opts] if o != "--help"]
        found[path] = options
        for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
            if not getattr(sub, "hidden", False):
                walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "facecli")
    return found


COMMANDS = _commands()


def sections(text: str) -> dict[str, str]:
    """Each heading's text (backticks dropped) -> its section: up to the next heading of its level or above."""
    text = _prose(text)
    heads = list(HEADING.finditer(text))
    out = {}
    for i, head in enumerate(heads):
        level = len(head.group(1))
        end = next((h.start() for h in heads[i + 1:] if len(h.group(1)) <= level), len(text))
        out[head.group(2).replace("`", "").strip()] = text[head.end():end]
    return out


@cache
def _reference() -> dict[str, str]:
    return sections(REFERENCE.read_text(encoding="utf-8"))


def _names(section: str, option: str) -> bool:
    """Whether the section names the option as a word of its own (--head, not --no-head or --head-size)."""
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", section) is not None


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_has_a_section_in_the_reference(command):
    if command not in _reference():
        pytest.fail(f"docs/commands.md has no heading '{command}' (its headings: {', '.join(sorted(_reference()))})")


@pytest.mark.parametrize(("command", "option"), [(c, o) for c, opts in sorted(COMMANDS.items()) for o in opts])
def test_option_is_in_its_command_section(command, option):
    section = _reference().get(command)
    if section is None:
        pytest.fail(f"docs/commands.md has no heading '{command}', so its option {option} is not documented")
    if not _names(section, option):
        pytest.fail(f"docs/commands.md, section '{command}': option {option} is not mentioned")


def test_every_command_section_names_all_its_options():
    """One failure that lists everything missing, for a quick overview."""
    missing = {c: [o for o in opts if not _names(_reference().get(c, ""), o)] for c, opts in COMMANDS.items()}
    missing = {c: m for c, m in missing.items() if m}
    if missing:
        pytest.fail("missing from docs/commands.md: " + "; ".join(f"{c}: {' '.join(m)}"
                                                                  for c, m in sorted(missing.items())))


@pytest.mark.parametrize(("heading", "expected"), [
    ("Accuracy: `facecli eval`", "accuracy-facecli-eval"),
    ("The URL, passwords and TLS", "the-url-passwords-and-tls"),
    ("`facecli gallery set`", "facecli-gallery-set"),
    ("What tau means — in short", "what-tau-means--in-short"),
    ("JSON Lines: per_command", "json-lines-per_command"),
])
def test_slug_is_githubs(heading, expected):
    assert slug(heading) == expected


def _modules() -> list[str]:
    """Every module of the package (its path below facecli/), packages' __init__.py aside."""
    package = ROOT / "facecli"
    return sorted(str(p.relative_to(package)) for p in package.rglob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("module", _modules())
def test_architecture_names_every_module(module):
    """The architecture page matches the tree: each module is named there (by its file name, in code)."""
    named = set(re.findall(r"`(?:[\w/]+/)?(\w+\.py)`", (DOCS / "architecture.md").read_text()))
    assert Path(module).name in named, f"docs/architecture.md does not name facecli/{module}"


def test_architecture_names_no_module_that_is_gone():
    names = {Path(m).name for m in _modules()} | {"__init__.py"}
    named = set(re.findall(r"`(?:[\w/]+/)?(\w+\.py)`", (DOCS / "architecture.md").read_text()))
    assert named <= names, f"docs/architecture.md names modules that are not in facecli/: {sorted(named - names)}"


def test_every_environment_variable_is_in_the_reference():
    used = {m for path in (ROOT / "facecli").rglob("*.py")
            for m in re.findall(r"\bFACECLI_[A-Z_]+\b", path.read_text())}
    text = (ROOT / "docs" / "commands.md").read_text()
    section = text[text.index("## Environment variables"):text.index("## `facecli`")]
    documented = set(re.findall(r"^\| `(FACECLI_[A-Z_]+)` \|", section, flags=re.M))
    assert used and used == documented
