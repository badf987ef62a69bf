"""What every source hands the pipeline: units of work, each read as chunks of raw rows.

A *unit* is the smallest piece a source can commit as done: one CSV file (a SQL
window later). The pipeline records every chunk of a unit in the ledger, then
marks the unit done, so a crash in the middle re-reads the unit and the ledger
drops what it already holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd


@dataclass(frozen=True)
class BadLine:
    """A line the source could not even split into fields."""

    line: int
    reason: str
    message: str
    column: str = ""


@dataclass(frozen=True)
class RawChunk:
    """Rows as the source holds them: text columns named as in the source, the
    index is the row's line number (or row number) for error reports."""

    frame: pd.DataFrame
    bad_lines: list[BadLine] = field(default_factory=list)


class Unit(Protocol):
    """One committable piece of a source (one file)."""

    key: str     # identifies the content, e.g. the file's SHA-256
    label: str   # what a person calls it, e.g. the file name

    def chunks(self) -> Iterator[RawChunk]:
        """Yield the unit's rows in chunks of bounded size."""
        ...


class Source(Protocol):
    """A place conversions come from."""

    name: str

    def units(self) -> Iterator[Unit]:
        """Yield the units to read this run, oldest first."""
        ...
