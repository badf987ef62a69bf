"""Plain-text tables (drawn by rich) for the run summary and ``status``.

Rendered to a string without colour, so the same text reads well on a terminal,
in a cron mail and in the systemd journal.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table


def table_text(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None,
               indent: int = 2) -> str:
    """The rows as an aligned table; numbers right-aligned, every cell as text."""
    table = Table(*headers, title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, header_style="", title_style="")
    for index, column in enumerate(table.columns):
        column.justify = "right" if rows and all(_numeric(row[index]) for row in rows) else "left"
        column.overflow = "fold"
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    buffer = io.StringIO()
    Console(file=buffer, width=160, color_system=None, emoji=False, highlight=False,
            markup=False).print(table)
    pad = " " * indent
    return "\n".join(pad + line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines())


def _numeric(cell: object) -> bool:
    text = str(cell).rstrip("%")
    return isinstance(cell, int | float) or text.replace(".", "", 1).isdigit()
