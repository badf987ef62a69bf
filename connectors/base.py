"""What every source hands the pipeline: units of work, each read as chunks of raw rows.

A *unit* is the smallest piece a source can commit as done: one CSV file, or one
cursor window of a SQL query. The pipeline records every chunk of a unit in the
ledger, then calls ``unit.commit``, so a crash in the middle re-reads the unit
and the ledger drops what it already holds.

Sources keep their progress (processed files, cursors) in the ledger database,
through the small ``SourceState`` interface the ledger implements.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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


class MisalignedBlock(Exception):
    """A block of a file did not end between two records: the rest of the file must be read as one stream."""


class Unparsed(Protocol):
    """Rows not parsed yet (a block of a CSV file): small to send, parsed where they are mapped."""

    def load(self) -> RawChunk:
        """The rows; raises MisalignedBlock when the block does not end between two records."""
        ...

    def rest(self) -> Iterator[RawChunk]:
        """From this block to the end of its file, read as one stream."""
        ...


def loaded(items: Iterable[RawChunk | Unparsed]) -> Iterator[RawChunk]:
    """The chunks, blocks loaded here, in order; from a misaligned block on, its file's rest as a stream."""
    it = iter(items)
    for item in it:
        if isinstance(item, RawChunk):
            yield item
            continue
        try:
            chunk = item.load()
        except MisalignedBlock:
            close(it)
            yield from item.rest()
            return
        yield chunk


def close(items: Iterator[Any]) -> None:
    """Stops a generator of blocks (its file closes) rather than waiting for the collector."""
    stop = getattr(items, "close", None)
    if stop is not None:
        stop()


@dataclass(frozen=True)
class Window:
    """A backfill's range, ``since <= t < until`` in Unix seconds; None leaves that end open."""

    since: float | None = None
    until: float | None = None

    def contains(self, seconds: float) -> bool:
        return (self.since is None or seconds >= self.since) and (self.until is None or seconds < self.until)


class SourceState(Protocol):
    """Where sources keep their progress; the ledger implements it."""

    def is_processed(self, source: str, sha256: str) -> bool: ...

    def mark_processed(self, source: str, sha256: str, name: str, rows: int, now: float) -> None: ...

    def cursor(self, source: str) -> str | None: ...

    def set_cursor(self, source: str, value: str, now: float) -> None: ...


class Unit(Protocol):
    """One committable piece of a source."""

    key: str     # identifies the content, e.g. the file's SHA-256
    label: str   # what a person calls it, e.g. the file name

    def is_done(self, state: SourceState) -> bool:
        """True when an earlier run already recorded this unit completely."""
        ...

    def chunks(self) -> Iterator[RawChunk]:
        """Yield the unit's rows in chunks of bounded size."""
        ...

    def commit(self, state: SourceState, rows: int, now: float) -> None:
        """Remember the unit as done; called only after every chunk is in the ledger."""
        ...


@runtime_checkable
class FileUnit(Protocol):
    """Optional for units that are files: their refused rows are also reported beside them, and a
    file dropped again after it was recorded is put away like the first copy."""

    def quarantine_path(self) -> Path:
        """Where this file's own quarantine report goes (next to the file, wherever it now is)."""
        ...

    def put_away(self) -> None:
        """Tidy away a file ``is_done`` found recorded, as ``commit`` would have; only a run that
        records does this (``validate`` changes nothing). Raises FileNotMoved when it cannot."""
        ...


class Source(Protocol):
    """A place conversions come from."""

    name: str

    def units(self, window: Window | None = None) -> Iterator[Unit]:
        """Yield the units to read this run, oldest first; with a window (a backfill),
        the units of that window, including ones already processed."""
        ...
