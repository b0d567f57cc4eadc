"""CSV: one flat row per JSON row, by one rule for every command (docs/output.md, "CSV").

A box becomes ``box_x1 … box_y2``, a list of points or objects one cell per
item and key, a list of texts one cell; text a spreadsheet would run as a
formula is quoted (OWASP's CSV injection advice).
"""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]

LANDMARKS = 5
_CORNERS = ("x1", "y1", "x2", "y2")
#: JSON fields holding a list of points or of objects: the suffix of each item's cells
_ITEMS = {"landmarks": ("x", "y"), "candidates": ("name", "distance")}
_SIZES = {"landmarks": LANDMARKS}
#: JSON fields holding a list of texts: one CSV cell, the texts joined by "; "
_TEXTS = ("names", "conflicts", "missed")


def _is_box(field: str) -> bool:
    return field == "box" or field.endswith("_box")


def _is_list(field: str) -> bool:
    """A field whose value is a list (or null): it has one CSV column per cell, never one of its own."""
    return _is_box(field) or field in _ITEMS or field == "embedding"


def _columns(field: str, n: int) -> list[str]:
    """The CSV columns of a JSON field whose value is a list of ``n`` items."""
    if _is_box(field):
        return [f"{field}_{c}" for c in _CORNERS]
    if field in _ITEMS:
        return [f"{field}_{i}_{k}" for i in range(n) for k in _ITEMS[field]]
    return [f"{field}_{i}" for i in range(n)]  # a vector: embedding_0, embedding_1, ...


def _cells(field: str, value: list) -> list:
    if field in _ITEMS:
        keys = _ITEMS[field]
        return [item[k] if isinstance(item, dict) else item[j] for item in value for j, k in enumerate(keys)]
    return value


#: What a spreadsheet reads as the start of a formula (OWASP's CSV injection list)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A scalar as CSV writes it: JSON's true/false, an empty cell for null; text that a spreadsheet would run as
    a formula (a name or file name beginning ``=``, ``+``, ``-``, ``@``, tab or CR) is prefixed with ``'``, as
    OWASP recommends, so that it is shown, never evaluated. Numbers are written as they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def flat(row: Row) -> Row:
    """A JSON row as CSV cells: a box becomes ``box_x1 … box_y2``, landmarks ``landmarks_0_x …
    landmarks_4_y``, candidates ``candidates_0_name, candidates_0_distance, …``, an embedding
    ``embedding_0 …``; a null list leaves its cells empty."""
    cells: Row = {}
    for field, value in row.items():
        if field in _TEXTS:
            cells[field] = _cell("; ".join(value))
        elif isinstance(value, list):
            cells.update(zip(_columns(field, len(value)), map(_cell, _cells(field, value))))
        elif value is not None or not _is_list(field):
            cells[field] = _cell(value)
    return cells


def csv_columns(fields: tuple[str, ...], sizes: dict[str, int]) -> list[str]:
    """The CSV header for rows with these JSON fields; ``sizes`` gives the length of list fields
    (``candidates``: --top-k, ``embedding``: the model's dimension)."""
    sizes = _SIZES | sizes
    out: list[str] = []
    for field in fields:
        n = 4 if _is_box(field) else sizes.get(field)
        out += [field] if n is None else _columns(field, n)
    return out


