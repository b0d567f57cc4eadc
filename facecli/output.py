"""Everything facecli prints: results on stdout, everything else on stderr.

Results are JSON Lines (``--json``) or a rich table; logs, warnings and
progress bars go to stderr only, so ``facecli ... --json | jq`` always sees
clean JSON.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from facecli.detection import Detection


class Output:
    """The printing policy of one command run."""

    def __init__(self, json_lines: bool = False, quiet: bool = False, verbose: bool = False) -> None:
        self.json = json_lines
        self.quiet = quiet
        self.verbose = verbose
        self.out = Console(highlight=False, soft_wrap=True)
        if not self.out.is_terminal:  # piped tables: do not squeeze paths into 80 columns
            self.out.width = 200
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def record(self, obj: dict[str, Any]) -> None:
        """One JSON Lines row on stdout, flushed so pipelines see it at once."""
        sys.stdout.write(json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        table = Table(title=title, title_justify="left")
        for col in columns:
            table.add_column(col)
        for row in rows:
            table.add_row(*(escape(str(c)) for c in row))
        self.out.print(table)

    def line(self, text: str) -> None:
        """A plain result line on stdout (human mode)."""
        self.out.print(text, markup=False)

    def error(self, message: str) -> None:
        self.err.print(f"error: {message}", style="red", markup=False)

    def warn(self, message: str) -> None:
        if not self.quiet:
            self.err.print(f"warning: {message}", style="yellow", markup=False)

    def note(self, message: str) -> None:
        """Something the user should know about (a slow step starting): stderr, unless --quiet."""
        if not self.quiet:
            self.err.print(message, style="dim", markup=False)

    def info(self, message: str) -> None:
        if self.verbose:
            self.err.print(message, style="dim", markup=False)

    @contextmanager
    def progress(self, total: int | None, label: str) -> Iterator[Any]:
        """A progress callback; a visible bar only on a terminal and for more than one image."""
        show = self.err.is_terminal and not self.quiet and (total is None or total > 1)
        if not show:
            yield lambda: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=self.err, transient=True) as bar:
            task = bar.add_task(label, total=total)
            yield lambda: bar.advance(task)


def rounded(x: float, digits: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def face_fields(det: Detection) -> dict[str, Any]:
    """The JSON fields every face row carries: box, score, landmarks."""
    return {
        "box": [round(v, 1) for v in det.box],
        "score": rounded(det.score),
        "landmarks": None if det.landmarks is None else [[round(float(x), 1), round(float(y), 1)]
                                                         for x, y in det.landmarks],
    }
