"""CSV drop folder: every ``*.csv`` file in a folder, read in chunks with exact line numbers.

Lifecycle: a file whose size or time changed while it was looked at, or changed
less than ``settle_seconds`` ago, is still being written and is left for the next
run. A processed file moves to ``processed/`` inside the folder (``after = "keep"``
leaves it), and a file with refused rows gets ``<name>.quarantine.csv`` beside it.

Reading: for an encoding in which a newline or a quote byte is always that character (UTF-8, ASCII,
ISO 8859, Windows code pages), this process only cuts the bytes into blocks of ``chunk_size`` lines,
each ending at a newline where the count of quotes is even, and the block is parsed where it is
mapped (a worker process). A stray quote in an unquoted field fools that count, so each block is
verified as it is parsed: a record appended after it must come out as a record of its own. From a
block that fails, the rest of the file is read as one stream here, as every file once was. Other
encodings (UTF-16, ...) are always read as one stream.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import pandas as pd

from connectors.base import BadLine, MisalignedBlock, RawChunk, SourceState, Window, loaded
from uploader.errors import FileNotMoved, FileNotSettled, SourceError

if TYPE_CHECKING:  # settings imports the registry, so only type checkers import settings here
    from uploader.settings import SourceSettings

REPLACEMENT_CHAR = "\ufffd"
PROCESSED = "processed"
QUARANTINE_SUFFIX = ".quarantine.csv"

# Encodings whose bytes b"\n", b"\r" and b'"' are always those characters, one byte a character
# or ASCII-compatible multi-byte (UTF-8): their files can be cut at newline bytes.
SPLITTABLE = re.compile(r"utf-8(-sig)?|ascii|iso8859-\d+|cp125[0-8]")
BLOCK_END = "\x1fcapi-block-end\x1f"  # the verification record; no CSV export writes unit separators
PIECE_BYTES = 1 << 20  # the file is read this much at a time
MIN_CAP_BYTES = 1 << 20  # a block never waits for more than max(this, 4x a block) bytes to find its lines
FIRST_LINE_BYTES = 256  # the guess of a line's size that sizes the cap until a first block is cut
EXTEND = 4  # a block with an odd count of quotes may grow by EXTEND times its size (or the least cap) to even it
_LINE_END = re.compile(rb"\r\n|\r(?=[^\n])|\n")  # csv's lines (newline=""); a final \r waits for the next byte
_LONE_CR = re.compile(rb"\r(?!\n)")
# What a header is tried with when a source sets no delimiter: Excel writes ";" where the decimal
# separator is a comma (most of Europe), and exports of other tools use tabs or pipes.
DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class CsvBlock:
    """Lines of a CSV file as bytes, cut in the main process, parsed where they are mapped.

    Small to send to a worker: the header and the block's bytes. ``offset`` and ``first_line``
    locate it in the file, so the file can be read on from here when the block is misaligned.
    """

    path: Path
    header: list[str]
    data: bytes
    encoding: str
    first_line: int
    offset: int
    chunk_size: int
    last: bool  # ends the file: its last line may lack a newline
    delimiter: str = ","

    def load(self) -> RawChunk:
        """The block's rows exactly as one reader over the whole file gives them.
        Raises MisalignedBlock when the block does not end between two records."""
        text = self.data.decode(_body_encoding(self.encoding), errors="replace")
        if self.last and not text.endswith(("\n", "\r")):
            text += "\n"  # a last line without newline reads the same with one
        reader = csv.reader(io.StringIO(text + BLOCK_END + "\n", newline=""), delimiter=self.delimiter)
        try:
            records = list(_numbered(reader, self.first_line))
        except SourceError as exc:  # e.g. a field over the size limit: the stream read says whether it is real
            raise MisalignedBlock(f"{self.path.name}, {exc}") from exc
        if not records or records.pop()[1] != [BLOCK_END]:  # swallowed into a quoted field: cut inside one
            raise MisalignedBlock(f"{self.path.name}: the block from line {self.first_line} ends inside a field")
        # A block decoded without a replacement character needs no per-column search for one.
        return _to_chunk(self.header, records, self.encoding, self.delimiter, REPLACEMENT_CHAR in text)

    def rest(self) -> Iterator[RawChunk]:
        """From this block to the end of the file, read as one stream (as before blocks), in chunks."""
        with self.path.open("rb") as raw:
            raw.seek(self.offset)
            with io.TextIOWrapper(raw, encoding=_body_encoding(self.encoding), errors="replace",
                                  newline="") as handle:
                records = _numbered(csv.reader(handle, delimiter=self.delimiter), self.first_line)
                yield from _batches(self.header, records, self.chunk_size, self.encoding, self.delimiter)


class CsvFile:
    """One CSV file: its content hash is its identity, so a renamed copy is still the same file."""

    def __init__(self, source: str, path: Path, encoding: str, chunk_size: int, rereading: bool = False,
                 archive: Path | None = None, settle_seconds: float = 0.0, delimiter: str | None = None) -> None:
        self.source = source
        self.path = path
        self.label = path.name
        self.encoding = encoding
        self.delimiter = delimiter  # None: the one the header shows (``DELIMITERS``)
        self.chunk_size = chunk_size
        self.rereading = rereading
        self.archive, self.settle_seconds = archive, settle_seconds
        self._signature = _signature(path)  # taken before hashing, compared before reading and committing
        self.key = file_sha256(path)

    def is_done(self, state: SourceState) -> bool:
        # A backfill reads processed files again; the ledger still drops what it holds.
        return not self.rereading and state.is_processed(self.source, self.key)

    def commit(self, state: SourceState, rows: int, now: float) -> None:
        # A file that grew while it was read is read again next run; what it held is in the ledger.
        self._check_settled()
        state.mark_processed(self.source, self.key, self.label, rows, now)
        self.put_away()

    def quarantine_path(self) -> Path:
        """``<name>.quarantine.csv`` next to the file (in processed/ once it was moved there)."""
        return self.path.with_name(self.path.stem + QUARANTINE_SUFFIX)

    def chunks(self) -> Iterator[RawChunk]:
        """Yield the file's data rows, about ``chunk_size`` lines at a time, indexed by line number.
        Raises FileNotSettled, before any row, for a file still being written."""
        return loaded(self.blocks())

    def blocks(self) -> Iterator[RawChunk | CsvBlock]:
        """The file as blocks to parse where they are mapped, or as chunks when its encoding cannot
        be cut at newline bytes. Raises FileNotSettled, before any block, for a file still being written."""
        self._check_settled()
        if not _splittable(self.encoding):
            yield from self.stream()
            return
        header, header_lines, delimiter = _header(self.path, self.encoding, self.delimiter)
        if header is None:
            return
        with self.path.open("rb") as handle:
            cutter = _Cutter(handle)
            offset, line = cutter.skip(header_lines), header_lines + 1
            while data := cutter.block(self.chunk_size):
                yield CsvBlock(self.path, header, data, self.encoding, line, offset, self.chunk_size, cutter.at_end,
                               delimiter)
                offset, line = offset + len(data), line + _line_count(data)

    def stream(self) -> Iterator[RawChunk]:
        """The whole file through one reader, ``chunk_size`` records at a time: what blocks must equal."""
        header, _, delimiter = _header(self.path, self.encoding, self.delimiter)
        # errors="replace" keeps one badly encoded row from stopping the file; such rows are refused.
        with self.path.open(encoding=self.encoding, errors="replace", newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            if header is None or next(reader, None) is None:
                return
            yield from _batches(header, _numbered(reader, 1), self.chunk_size, self.encoding, delimiter)

    def _check_settled(self) -> None:
        now = _signature(self.path)
        age = time.time() - now[1] / 1e9
        if now != self._signature or age < self.settle_seconds:
            raise FileNotSettled(f"{self.label} is still being written (changed {max(age, 0):.0f} s ago); "
                                 "left for the next run")

    def put_away(self) -> None:
        """Move the file to processed/ (after its commit, or when a run finds it dropped again after
        it was recorded: it goes where the first copy went). Raises FileNotMoved when the folder does
        not let it: the file is recorded as done, so it is only named in every run's summary until
        that is fixed."""
        if self.archive is None or self.path.parent == self.archive:
            return
        try:
            self.archive.mkdir(exist_ok=True)
            target, n = self.archive / self.path.name, 1
            while target.exists():  # an older file of the same name is kept too
                n += 1
                target = self.archive / f"{self.path.stem}-{n}{self.path.suffix}"
            self.path = self.path.rename(target)  # keeps its mtime, so a backfill window still finds it
        except OSError as exc:
            raise FileNotMoved(f"done, but it cannot be moved to {PROCESSED}/ ({exc.strerror or exc}): give the "
                               'uploader write access to the folder, or set after = "keep"') from None


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
        for modified, _, path in _oldest_first(files):
            if window is not None and not window.contains(modified):
                continue
            try:
                unit = CsvFile(self.name, path, self.settings.encoding, self.chunk_size, rereading=window is not None,
                               archive=archive if self.settings.after == "move" else None,
                               settle_seconds=self.settings.settle_seconds, delimiter=self.settings.delimiter)
            except FileNotFoundError:  # removed or renamed while earlier files were read: nothing to do
                continue
            yield unit


def _oldest_first(files: list[Path]) -> list[tuple[float, str, Path]]:
    """(modification time, name, path) of the files still there, oldest first."""
    stamped = []
    for path in files:
        try:
            stamped.append((path.stat().st_mtime, path.name, path))
        except FileNotFoundError:  # removed since the folder was listed
            continue
    return sorted(stamped)


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


def _numbered(reader: Any, first: int) -> Iterator[tuple[int, list[str]]]:
    """Pair each record with the line it starts on (quoted fields may span lines); the reader's
    first line is line ``first`` of the file. A record csv cannot read (a field over its size
    limit: a quote that is never closed swallows the rest of the file) stops the file with
    SourceError, naming the line: the rest of the run goes on."""
    start = reader.line_num + first
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + first
    except csv.Error as exc:
        raise SourceError(f"line {start} cannot be read ({exc}): most likely a quote opened there is never "
                          "closed; fix the file and drop it again") from None


def _batches(header: list[str], records: Iterator[tuple[int, list[str]]], size: int,
             encoding: str, delimiter: str) -> Iterator[RawChunk]:
    """A stream's records in chunks of ``size``: memory stays flat whatever the file's size."""
    while batch := list(itertools.islice(records, size)):
        yield _to_chunk(header, batch, encoding, delimiter)


def _to_chunk(header: list[str], batch: list[tuple[int, list[str]]], encoding: str,
              delimiter: str = ",", undecodable: bool = True) -> RawChunk:
    """The records as a frame indexed by line; rows with too many fields, and (where ``undecodable``
    says there may be some) rows with bytes the encoding could not decode, as bad lines."""
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
                               f"(a {_DELIMITER_NAMES.get(delimiter, repr(delimiter))} inside a value needs quotes)"))
            continue
        lines.append(line)
        rows.append(row + [""] * (width - len(row)))
    frame = pd.DataFrame(rows, columns=_unique_names(header), index=pd.Index(lines, name="line"), dtype=object)
    if not undecodable:
        return RawChunk(frame, bad)
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


def _splittable(encoding: str) -> bool:
    """Whether newline and quote bytes can be trusted to be those characters wherever they are."""
    try:
        return SPLITTABLE.fullmatch(codecs.lookup(encoding).name) is not None
    except LookupError:  # the stream read raises it, as it always did
        return False


def _body_encoding(encoding: str) -> str:
    """What decodes bytes after the header: a byte-order mark is only one at the start of the file."""
    return "utf-8" if codecs.lookup(encoding).name == "utf-8-sig" else encoding


def _header(path: Path, encoding: str, delimiter: str | None) -> tuple[list[str] | None, int, str]:
    """The first record, read as the stream read reads it, how many lines it took, and the
    delimiter: the given one, else of ``DELIMITERS`` the one that splits the header into the most
    fields (the first of them on a tie, so a one-column file is read with commas)."""
    candidates = (delimiter,) if delimiter is not None else DELIMITERS
    found = [_first_record(path, encoding, candidate) for candidate in candidates]
    return max(found, key=lambda record: len(record[0] or []))  # of equals, max returns the first


def _first_record(path: Path, encoding: str, delimiter: str) -> tuple[list[str] | None, int, str]:
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        _, header = next(_numbered(reader, 1), (1, None))  # _numbered: a header csv cannot read is a SourceError
        return header, reader.line_num, delimiter


_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _line_count(data: bytes) -> int:
    """Lines as csv.reader counts them with newline="": a \\n, a \\r\\n and a lone \\r each end one."""
    lines = data.count(b"\n")
    if b"\r" in data and _LONE_CR.search(data):
        lines += data.count(b"\r") - data.count(b"\r\n")
    return lines


class _Cutter:
    """Cuts a binary file into blocks ending at line ends, holding only a block or so of it.

    Blocks end after a b"\\n" (never inside a \\r\\n), or after a lone \\r in a file without
    enough b"\\n" (old Mac files); a line longer than the cap is cut inside, which the
    verification then refuses.
    """

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.buf = bytearray()
        self.eof = False
        self.line_bytes = FIRST_LINE_BYTES

    @property
    def at_end(self) -> bool:
        """Nothing is left: the block just cut ends the file (its last line may lack a newline)."""
        return self.eof and not self.buf

    def skip(self, lines: int) -> int:
        """Drops the header's lines, counted as csv.reader counts them; returns their size in bytes."""
        while True:
            end, found = _nth_line_end(self.buf, lines, len(self.buf))
            if found == lines or not self._more(len(self.buf) + 1):
                break
        end = end if found == lines else len(self.buf)  # the file ends inside the header's lines
        del self.buf[:end]
        return end

    def block(self, lines: int) -> bytes:
        """The next block of about ``lines`` lines (b"" at the end of the file)."""
        end = self._even_quotes(self._line_end(lines))
        data = bytes(self.buf[:end])
        del self.buf[:end]
        self.line_bytes = max(len(data) // max(lines, 1), 1)
        return data

    def _line_end(self, lines: int) -> int:
        """Where ``lines`` b"\\n" end; csv's own count of lines when the cap or the file's end comes first."""
        limit = max(MIN_CAP_BYTES, 4 * lines * self.line_bytes)
        pos, missing = 0, lines
        while True:
            pos, missing = _skip_newlines(self.buf, pos, missing, limit)
            if not missing or not self._more(limit):
                break
        if not missing:
            return pos
        limit = min(limit, len(self.buf))
        end, found = _nth_line_end(self.buf, lines, limit)
        if found < lines and self.eof and limit == len(self.buf):
            return limit  # the file's last lines
        if end:
            return end
        # No line end before the cap (which is at least 4 bytes): cut inside the line, which the
        # verification refuses; never between \r and \n, which it would not notice.
        return limit - 1 if self.buf[limit - 1] == ord("\r") else limit

    def _even_quotes(self, end: int) -> int:
        """A block with an odd count of quotes likely ends inside a quoted field: it grows to the first
        line end where the count is even, by up to max(EXTEND times its size, the least cap), else stays."""
        if self.buf.count(b'"', 0, end) % 2 == 0:
            return end
        limit = end + max(end * EXTEND, MIN_CAP_BYTES)
        while self._more(limit):
            pass
        even = _even_end(self.buf, end, limit)
        if even is None and self.eof and len(self.buf) <= limit and self.buf.count(b'"', end) % 2:
            return len(self.buf)  # the count is even where the file ends (with \r, or no newline)
        return even or end

    def _more(self, limit: int) -> bool:
        """Reads another piece, unless the buffer already reaches ``limit`` or the file has ended."""
        if self.eof or len(self.buf) >= limit:
            return False
        piece = self.handle.read(PIECE_BYTES)
        self.eof = not piece
        self.buf += piece
        return bool(piece)


def _skip_newlines(buf: bytearray, pos: int, lines: int, limit: int) -> tuple[int, int]:
    """Passes up to ``lines`` b"\\n" from ``pos``: (where it got to, how many are still missing)."""
    find = buf.find
    while lines:
        found = find(b"\n", pos, limit)
        if found < 0:
            break
        pos, lines = found + 1, lines - 1
    return pos, lines


def _nth_line_end(buf: bytearray, lines: int, limit: int) -> tuple[int, int]:
    """Where the first ``lines`` lines (\\n, \\r\\n or a lone \\r) end before ``limit``, and how many were found."""
    end = found = 0
    for found, match in enumerate(_LINE_END.finditer(buf, 0, limit), 1):
        end = match.end()
        if found == lines:
            break
    return end, found


def _even_end(buf: bytearray, pos: int, limit: int) -> int | None:
    """The first line end after ``pos`` with an odd count of quotes between (evening an odd block)."""
    while (quote := buf.find(b'"', pos, limit)) >= 0:
        line_end = _LINE_END.search(buf, quote + 1, limit)
        if line_end is None:
            return None
        pos = buf.find(b'"', quote + 1, line_end.start()) + 1
        if pos == 0:
            return line_end.end()
    return None
