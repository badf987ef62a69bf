"""SQL source: a query over a CRM database, read incrementally by a time cursor.

Each run reads one window ``[since, until)`` of the cursor column (say ``updated_at``):
``until`` is the run's start (as singer-sdk caps its bookmarks, so a row changed during
the run is read next time) and ``since`` is the stored cursor minus the look-back, cut
to the whole second, or on the first run the configured ``start`` (default: seven days
back, as older events are too old for Meta). The query receives both as the bind parameters ``:since`` and
``:until`` (and ``:oldest``, the oldest event time worth reading: what Meta still
accepts for the source, or a backfill's start if earlier).

The cursor lives in the ledger database and moves to ``until`` only after every row of
the window is recorded there (``commit``), so a crash re-reads the window and the
ledger drops what it already holds. A backfill reads its own window and leaves the
cursor where it is. The CRM database is only ever read, inside a
read-only transaction, in chunks of ``chunk_size`` rows streamed from the server.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from connectors.base import BadLine, RawChunk, SourceState, Window
from connectors.sql_db import bind_time, executable_sql, open_engine, query_error, read_only_session
from uploader.errors import SourceError
from uploader.mapping.columns import TEMPLATE, header_key

if TYPE_CHECKING:  # settings imports the registry, so only type checkers import settings here
    from uploader.settings import SourceSettings

DAY = 86_400
FIRST_RUN_DAYS = 7


class SqlQuery:
    """A ``type = "sql"`` source: one window of its query per run."""

    def __init__(self, settings: SourceSettings, chunk_size: int, now: float | None = None) -> None:
        self.name = settings.name
        self.settings = settings
        self.chunk_size = chunk_size
        self.now = time.time() if now is None else now

    def units(self, window: Window | None = None) -> Iterator[SqlWindow]:
        """The one window to read this run; with a backfill ``window``, that window (capped at now)."""
        yield SqlWindow(self.settings, self.chunk_size, self.now, window)


class SqlWindow:
    """One window of a SQL source; its bounds are known once ``is_done`` has read the cursor."""

    def __init__(self, settings: SourceSettings, chunk_size: int, now: float, backfill: Window | None) -> None:
        self.source = settings.name
        self.settings = settings
        self.chunk_size = chunk_size
        self.now = now
        self.backfill = backfill
        until = backfill.until if backfill is not None and backfill.until is not None else now
        # The run's start to the microsecond: a row saved just before the run is read by it.
        self.until = min(until, now)
        self.since: float | None = None
        self.stored: float | None = None  # the cursor as is_done found it

    @property
    def key(self) -> str:
        return f"{self.source}:{_iso(self.since)}..{_iso(self.until)}"

    @property
    def label(self) -> str:
        # The summary and quarantine name the source beside it: "crm_deals/updated_at 2026-...".
        return f"{self.settings.cursor} {_short(self.since)}..{_short(self.until)}"

    def is_done(self, state: SourceState) -> bool:
        """Read the stored cursor and fix the window; done when it is empty."""
        stored = state.cursor(self.source)
        self.stored = _parse_iso(stored) if stored else None
        # Whole seconds, closed: rows a database stored to the second (or rounded up to it) at the
        # last run's end are read again rather than lost; the ledger drops those it holds.
        self.since = float(math.floor(self._since()))
        return self.since >= self.until

    def _since(self) -> float:
        if self.backfill is not None:
            return self.backfill.since or 0.0
        if self.stored is not None:
            return self.stored - self.settings.lookback
        return self.settings.start if self.settings.start is not None else self.now - FIRST_RUN_DAYS * DAY

    def commit(self, state: SourceState, rows: int, now: float) -> None:
        """Move the cursor to ``until``: only for a normal run, and never backwards. A backfill
        leaves it alone (the next run re-reads a little more; the ledger drops what it holds)."""
        if self.since is None:
            raise RuntimeError("commit before is_done: the window is not known")
        if self.backfill is None and (self.stored is None or self.until > self.stored):
            state.set_cursor(self.source, _iso(self.until), now)

    def chunks(self) -> Iterator[RawChunk]:
        """The window's rows, ``chunk_size`` at a time, indexed by row number in the result."""
        if self.since is None:
            raise RuntimeError("is_done(state) reads the cursor; call it before chunks()")
        settings = self.settings
        url = settings.url.reveal() if settings.url is not None else ""
        sql = _query_text(settings)
        engine = open_engine(url, f"source {self.source!r} url")
        try:
            with read_only_session(engine, settings.timezone, url) as conn:
                yield from self._stream(conn, sql, url)
        finally:
            engine.dispose()

    def _stream(self, conn: Connection, sql: str, url: str) -> Iterator[RawChunk]:
        try:
            result = conn.execution_options(stream_results=True, max_row_buffer=self.chunk_size).execute(
                text(sql), self._params(conn.dialect.name))
            columns = _columns(list(result.keys()), self.settings.cursor or "")
            number = 1
            for rows in result.partitions(self.chunk_size):
                yield to_chunk(rows, columns, number, self._drop_cursor())
                number += len(rows)
        except SQLAlchemyError as exc:
            raise query_error(exc, str(self.settings.query), url) from None

    def _params(self, dialect: str) -> dict[str, Any]:
        from uploader.validation import window_days  # deferred: validation imports settings, which imports us

        oldest = self.now - window_days(self.settings.action_source) * DAY
        assert self.since is not None, "chunks() checked that is_done() set the window"
        if self.backfill is not None:
            # The operator asked for this range: its too-old rows are read and reported as expired.
            oldest = min(oldest, self.since)
        bounds = {"since": self.since, "until": self.until, "oldest": oldest}
        return {name: bind_time(value, dialect, self.settings.timezone) for name, value in bounds.items()}

    def _drop_cursor(self) -> str | None:
        """The cursor column is not sent, unless it also is a template column (say event_time)."""
        cursor = self.settings.cursor or ""
        renamed = {header_key(k) for k in self.settings.columns}
        return None if header_key(cursor) in TEMPLATE or header_key(cursor) in renamed else cursor


def to_chunk(rows: Sequence[Sequence[Any]], columns: list[str], first: int, drop: str | None) -> RawChunk:
    """Rows as the database returned them (typed values kept: the mapping layer turns them into
    text), indexed by their running row number; undecodable bytes refuse their row."""
    index = pd.RangeIndex(first, first + len(rows), name="line")
    frame = pd.DataFrame([tuple(row) for row in rows], columns=columns, index=index, dtype=object)
    if drop is not None:
        frame = frame.drop(columns=[drop])
    return _decode_bytes(frame)


def _decode_bytes(frame: pd.DataFrame) -> RawChunk:
    """Binary values (BLOBs, a SQL_ASCII database) are read as UTF-8; a row that is not is refused."""
    bad: list[BadLine] = []
    for column in frame.columns:
        kind = pd.api.types.infer_dtype(frame[column], skipna=True)
        if kind not in ("bytes", "mixed"):
            continue
        decoded = frame[column].map(_utf8)
        failed = decoded.map(lambda v: v is _UNDECODABLE)
        bad += [BadLine(int(line), "bad_encoding", "the text is not valid UTF-8", column=str(column))
                for line in frame.index[failed]]
        frame[column] = decoded.where(~failed, None)
    if bad:
        frame = frame.drop(index=[b.line for b in bad])
    return RawChunk(frame, bad)


_UNDECODABLE = object()


def _utf8(value: Any) -> Any:
    if not isinstance(value, bytes | bytearray | memoryview):
        return value
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return _UNDECODABLE


def _columns(names: list[str], cursor: str) -> list[str]:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SourceError(f"the query returns the column {repeated[0]!r} twice; name each column once (AS ...)")
    if cursor not in names:
        raise SourceError(f"the query returns no column {cursor!r} (the source's cursor); "
                          f"it returns: {', '.join(names)}")
    return names


def _query_text(settings: SourceSettings) -> str:
    try:
        return executable_sql(settings.query.read_text(encoding="utf-8")) if settings.query is not None else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read the query file {settings.query}: {exc}") from None


def _iso(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if moment.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def _short(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%MZ")


def _parse_iso(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()
