"""CSV drop folder: every ``*.csv`` file in a folder, read in chunks with exact line numbers.

Lifecycle: a file whose size or time changed while it was looked at, or changed
less than ``settle_seconds`` ago, is still being written and is left for the next
run. A processed file moves to ``processed/`` inside the folder (``after = "keep"``
leaves it), and a file with refused rows gets ``<name>.quarantine.csv`` beside it.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import pandas as pd

from connectors.base import BadLine, RawChunk, SourceState, Window
from uploader.errors import FileNotSettled

if TYPE_CHECKING:  # settings imports the registry, so only type checkers import settings here
    from uploader.settings import SourceSettings

REPLACEMENT_CHAR = "\ufffd"
PROCESSED = "processed"
QUARANTINE_SUFFIX = ".quarantine.csv"


class CsvFile:
    """One CSV file: its content hash is its identity, so a renamed copy is still the same file."""

    def __init__(self, source: str, path: Path, encoding: str, chunk_size: int, rereading: bool = False,
                 archive: Path | None = None, settle_seconds: float = 0.0) -> None:
        self.source = source
        self.path = path
        self.label = path.name
        self.encoding = encoding
        self.chunk_size = chunk_size
        self.rereading = rereading
        self.archive, self.settle_seconds = archive, settle_seconds
        self._signature = _signature(path)  # taken before hashing, compared before reading and committing
        self.key = file_sha256(path)

    def is_done(self, state: SourceState) -> bool:
        # A backfill reads processed files again; the ledger still drops what it holds.
        done = not self.rereading and state.is_processed(self.source, self.key)
        if done:
            self._put_away()  # the same content dropped again goes where the first copy went
        return done

    def commit(self, state: SourceState, rows: int, now: float) -> None:
        # A file that grew while it was read is read again next run; what it held is in the ledger.
        self._check_settled()
        state.mark_processed(self.source, self.key, self.label, rows, now)
        self._put_away()

    def quarantine_path(self) -> Path:
        """``<name>.quarantine.csv`` next to the file (in processed/ once it was moved there)."""
        return self.path.with_name(self.path.stem + QUARANTINE_SUFFIX)

    def chunks(self) -> Iterator[RawChunk]:
        """Yield the file's data rows, ``chunk_size`` at a time, indexed by line number.
        Raises FileNotSettled, before any row, for a file still being written."""
        self._check_settled()
        # errors="replace" keeps one badly encoded row from stopping the file; such rows are refused.
        with self.path.open(encoding=self.encoding, errors="replace", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                return
            records = _numbered(reader, handle)
            while batch := list(itertools.islice(records, self.chunk_size)):
                yield _to_chunk(header, batch, self.encoding)

    def _check_settled(self) -> None:
        now = _signature(self.path)
        age = time.time() - now[1] / 1e9
        if now != self._signature or age < self.settle_seconds:
            raise FileNotSettled(f"{self.label} is still being written (changed {max(age, 0):.0f} s ago); "
                                 "left for the next run")

    def _put_away(self) -> None:
        if self.archive is None or self.path.parent == self.archive:
            return
        self.archive.mkdir(exist_ok=True)
        target, n = self.archive / self.path.name, 1
        while target.exists():  # an older file of the same name is kept too
            n += 1
            target = self.archive / f"{self.path.stem}-{n}{self.path.suffix}"
        self.path = self.path.rename(target)  # keeps its mtime, so a backfill window still finds it


class CsvFolder:
    """A source reading every ``*.csv`` in a folder, oldest file first."""

    def __init__(self, settings: SourceSettings, chunk_size: int, now: float | None = None) -> None:
        # ``now`` (the run's start) is part of every source's constructor; files need no clock.
        self.name = settings.name
        self.settings = settings
        self.chunk_size = chunk_size

    def units(self, window: Window | None = None) -> Iterator[CsvFile]:
        """Every CSV file, oldest first; with a window, the files last modified inside it,
        those already moved to processed/ included."""
        folder = self.settings.path
        assert folder is not None, "a csv source always has a path (settings checks it)"
        archive = folder / PROCESSED
        files = _csv_files(folder) + (_csv_files(archive) if window is not None else [])
        for path in sorted(files, key=lambda p: (p.stat().st_mtime, p.name)):
            if window is None or window.contains(path.stat().st_mtime):
                yield CsvFile(self.name, path, self.settings.encoding, self.chunk_size, rereading=window is not None,
                              archive=archive if self.settings.after == "move" else None,
                              settle_seconds=self.settings.settle_seconds)


def _csv_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() == ".csv" and not p.name.lower().endswith(QUARANTINE_SUFFIX)]


def _signature(path: Path) -> tuple[int, int]:
    """Size and modification time: a file still being written changes them."""
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes, read in blocks so memory stays flat."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _numbered(reader: Any, handle: TextIO) -> Iterator[tuple[int, list[str]]]:
    """Pair each record with the line it starts on (quoted fields may span lines)."""
    start = reader.line_num + 1
    for row in reader:
        yield start, row
        start = reader.line_num + 1


def _to_chunk(header: list[str], batch: list[tuple[int, list[str]]], encoding: str) -> RawChunk:
    width = len(header)
    bad: list[BadLine] = []
    lines, rows = [], []
    for line, row in batch:
        if len(row) == width and (width > 1 or row != [""]):  # the usual case: a full row
            lines.append(line)
            rows.append(row)
            continue
        if not row or row == [""]:
            continue  # blank line
        if len(row) > width:
            bad.append(BadLine(line, "malformed_row",
                               f"the line has {len(row)} fields but the header has {width} "
                               "(a comma inside a value needs quotes)"))
            continue
        lines.append(line)
        rows.append(row + [""] * (width - len(row)))
    frame = pd.DataFrame(rows, columns=_unique_names(header), index=pd.Index(lines, name="line"), dtype=object)
    frame, encoding_bad = _drop_undecodable(frame, encoding)
    return RawChunk(frame, bad + encoding_bad)


def _unique_names(header: list[str]) -> list[str]:
    # Keep duplicated or empty header cells addressable; the mapping layer reports them as unknown.
    seen: dict[str, int] = {}
    names = []
    for cell in header:
        count = seen.get(cell, 0)
        seen[cell] = count + 1
        names.append(cell if count == 0 else f"{cell}#{count + 1}")
    return names


def _drop_undecodable(frame: pd.DataFrame, encoding: str) -> tuple[pd.DataFrame, list[BadLine]]:
    if frame.empty:
        return frame, []
    # One pass over each column's joined text finds the rare chunk with a replacement character.
    if not any(REPLACEMENT_CHAR in "\n".join(frame[column].tolist()) for column in frame.columns):
        return frame, []
    hit = frame.apply(lambda col: col.str.contains(REPLACEMENT_CHAR, regex=False))
    rows = hit.any(axis=1)
    if not rows.any():
        return frame, []
    bad = [
        BadLine(int(line), "bad_encoding",
                f"the text is not valid {encoding}; set encoding for this source (e.g. \"cp1252\")",
                column=str(hit.loc[line].idxmax()))
        for line in frame.index[rows]
    ]
    return frame[~rows], bad
