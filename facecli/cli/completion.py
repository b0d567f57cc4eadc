"""Shell completion of option and argument values that are not a fixed choice: the models of the manifest and
the people of the gallery in use (``--device``, ``--detector``, ``--search``, ``--templates`` and ``--linkage`` are
choices, which the shell completes by themselves).

A completion never fails: a gallery that cannot be opened completes nothing.
"""

from __future__ import annotations

import contextlib

import typer

from facecli.models import pipelines


def models(incomplete: str) -> list[str]:
    """The pipelines ``--model`` takes (the manifest's), for ``--model <TAB>``."""
    return [name for name in pipelines() if name.startswith(incomplete)]


def people(ctx: typer.Context, incomplete: str) -> list[str]:
    """The enrolled people of the gallery the command line names (``--gallery``, else the default), for
    ``--claim <TAB>``, ``gallery show <TAB>`` and the like."""
    # numpy (the gallery): loaded only when the shell asks for names, not by every command line
    from facecli.gallery import open_gallery

    location = ctx.params.get("gallery")
    with contextlib.suppress(Exception), open_gallery(location) as g:  # noqa: BLE001 - completion never fails
        return [p.name for p in g.persons() if p.name.startswith(incomplete)]
    return []
