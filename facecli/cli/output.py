"""Everything facecli prints: results on stdout, everything else on stderr.

Results are rows (dicts). Each result type has one ``render.View`` that turns
its rows into a table or lines for people; with ``--json`` the rows
themselves go out as JSON Lines, and with ``--csv`` as CSV (a header, then one
flat row per row: ``csvcells.flat``), each flushed as it comes. stdout holds
results only, in every mode: a table's title (the tau in use, the gallery
written to), logs, warnings and progress bars go to stderr, so
``facecli ... > out.txt`` and ``facecli ... --json | jq`` see data alone.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from facecli.cli.csvcells import csv_columns, flat

if TYPE_CHECKING:
    from facecli.cli.render import View

_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
#: what a JSON line escapes beyond JSON itself: C1 controls, and lone surrogates (bytes of a name that are not UTF-8)
_ESCAPED = re.compile("[\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """Control characters shown as escapes (``\\n``, ``\\x1b``): a name or a path cannot clear or recolour
    the terminal, move its cursor, or forge another line."""
    return _CONTROLS.sub(lambda m: {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(m[0], f"\\x{ord(m[0]):02x}"),
                         text)


class Output:
    """The printing policy of one command run."""

    def __init__(self, json_lines: bool = False, quiet: bool = False, verbose: bool = False,
                 csv_rows: bool = False) -> None:
        self.json = json_lines
        self.csv = csv_rows
        self.quiet = quiet
        self.verbose = verbose
        self.out = Console(highlight=False, soft_wrap=True)
        if not self.out.is_terminal:  # piped tables: do not squeeze paths into 80 columns
            self.out.width = 200
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    # -- results ------------------------------------------------------------------
    @property
    def machine(self) -> bool:
        """Rows for programs (--json, --csv) rather than a view for people."""
        return self.json or self.csv

    @contextmanager
    def results(self, view: View, title: str | None = None, fields: Sequence[str] | None = None,
                sizes: dict[str, int] | None = None) -> Iterator[Results]:
        """Collect a command's rows; a table is printed when the block ends, ``results.title`` on stderr.

        ``fields`` (default: the view's) and ``sizes`` (the length of list fields such as
        ``candidates``) fix the CSV columns before the first row.
        """
        results = Results(self, view, title, fields, sizes)
        yield results
        results.close()

    def record(self, obj: dict[str, Any]) -> None:
        """One JSON Lines row on stdout, flushed so pipelines see it at once."""
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        # JSON escapes C0 controls itself; C1 ones (a terminal reads \x9b as an escape) only when asked to; and a
        # file name's bytes that are not UTF-8 (Python's surrogate escapes) become \udcXX escapes: the line stays
        # UTF-8, valid JSON, and json.loads + os.fsencode give the name's bytes back
        sys.stdout.write(_ESCAPED.sub(lambda m: f"\\u{ord(m[0]):04x}", text) + "\n")
        sys.stdout.flush()

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """A table on stdout, without a title: a command's summary is a note on stderr."""
        table = Table()
        for col in columns:
            table.add_column(col)
        for row in rows:
            table.add_row(*(escape(printable(str(c))) for c in row))
        self.out.print(table)

    def line(self, text: str) -> None:
        """A plain result line on stdout (human mode)."""
        self.out.print(printable(text), markup=False)

    # -- everything else: stderr ------------------------------------------------------
    def error(self, message: str) -> None:
        self.err.print(f"error: {printable(message)}", style="red", markup=False)

    def warn(self, message: str) -> None:
        if not self.quiet:
            self.err.print(f"warning: {printable(message)}", style="yellow", markup=False)

    def prompt(self, message: str) -> None:
        """An instruction for the person in front of the camera: stderr, also with --quiet."""
        self.err.print(printable(message), style="bold", markup=False)

    def note(self, message: str) -> None:
        """Something the user should know about (a slow step starting): stderr, unless --quiet."""
        if not self.quiet:
            self.err.print(printable(message), style="dim", markup=False)

    def info(self, message: str) -> None:
        if self.verbose:
            self.err.print(printable(message), style="dim", markup=False)

    @contextmanager
    def progress(self, total: int | None, label: str) -> Iterator[Any]:
        """A progress callback; a visible bar only on a terminal and for more than one image.

        None: a stream of unknown length (paths on stdin), which gets no bar: it may never end, and
        its rows on the same terminal would tear it.
        """
        show = self.err.is_terminal and not self.quiet and total is not None and total > 1
        if not show:
            yield lambda: None
            return
        # rich's progress bars: loaded only when a bar is shown
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        rate = TextColumn("{task.fields[rate]}")  # items per second, once there is one
        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), rate, TimeRemainingColumn(),
                      console=self.err, transient=True) as bar:
            task = bar.add_task(label, total=total, rate="")

            def tick() -> None:
                bar.advance(task)
                speed = bar.tasks[task].speed
                bar.update(task, rate=f"{speed:.1f}/s" if speed else "")

            yield tick


class Results:
    """The rows of one command, rendered by one view: JSON Lines or CSV at once, or a table at the end."""

    def __init__(self, output: Output, view: View, title: str | None = None, fields: Sequence[str] | None = None,
                 sizes: dict[str, int] | None = None) -> None:
        self.output = output
        self.view = view
        self.title = title
        self._fields = view.fields if fields is None else tuple(fields)
        self._sizes = sizes or {}
        self._csv: csv.DictWriter | None = None
        self._rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        if self.output.json:
            self.output.record(row)
        elif self.output.csv:
            self._csv_row(row)
        elif self.view.line is not None:
            if self.view.keep(row):
                lines = self.view.line(row)
                for line in [lines] if isinstance(lines, str) else lines:
                    self.output.line(line)
        else:
            self._rows.append(row)

    def _csv_row(self, row: dict[str, Any] | None) -> None:
        """One CSV row on stdout (the header first), flushed; None: only the header."""
        cells = None if row is None else flat(row)
        if self._csv is None:
            if self._fields:
                columns = csv_columns(self._fields, self._sizes)
            elif cells is not None:  # a view without declared fields: one row of its own keys (gallery stats)
                columns = list(cells)
            else:
                return
            self._csv = csv.DictWriter(sys.stdout, columns, extrasaction="raise")  # RFC 4180: excel dialect
            self._csv.writeheader()
        if cells is not None:
            self._csv.writerow(cells)
        sys.stdout.flush()

    def close(self) -> None:
        if self.output.csv and self._csv is None:
            self._csv_row(None)  # no rows: still the header, so that a reader sees the columns
        if self.output.machine:
            return
        table = self.view.table(self._rows)
        if table:  # the title comes with its table: for people, on stderr
            if self.title:
                self.output.note(self.title)
            self.output.table(self.view.headers, table)
        self._rows = []
