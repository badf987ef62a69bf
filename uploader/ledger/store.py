"""The ledger: the durable record of every event and processed file.

It alone decides what was sent. An event is inserted once (its key is dataset +
event_name + event_id; a second insert is ignored), and is marked ``sent`` only
after Meta confirmed the batch that carried it.

A sent batch is first appended to the journal, committed before ``mark_sent`` returns, and
folded into ``events`` in key order every ``JOURNAL_FOLD`` events (see ``Ledger.fold``).
"""

from __future__ import annotations

import functools
import logging
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

import pandas as pd
from sqlalchemy import (ColumnElement, Connection, Engine, Insert, Select, Table, and_, create_engine, delete,
                        event, func, insert, literal, literal_column, null, or_, select, tuple_, update)
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError, SQLAlchemyError

from uploader.errors import ConfigError, StopRun
from uploader.ledger.keys import KeySet
from uploader.ledger.schema import cursors, events, files, journal, migrate
from uploader.validation import WINDOW_DAYS, window_days

PENDING, SENT, FAILED, EXPIRED, CANCELLED = "pending", "sent", "failed", "expired", "cancelled"
# Written out, not bound: only then may SQLite and PostgreSQL answer from the partial pending index.
IS_PENDING = events.c.status == literal_column("'pending'")
RECORD_COLUMNS = ["event_id", "event_name", "event_time", "action_source", "stage_rank", "payload"]
# Sent events appended to the journal between two folds: each fold writes a primary-key page
# once for all the journaled events on it, instead of once per batch (see Ledger.fold). Larger
# folds cost less ledger time in all (the ledger's work on a million events: 13.2 s folding every
# 25,000, 9.0 s every 100,000, 6.0 s in one fold) but stop the reading for longer; every 250,000,
# a million-row run was 3-11% faster than every 25,000 in interleaved runs. The journaled keys
# wait in a KeySet, 16 bytes a key (4 MB at 250,000).
JOURNAL_FOLD = 250_000

# How long a connection to a SQLite ledger waits for another connection's write to end (SQLite has
# one writer at a time) before it fails with "database is locked"; a ``timeout`` in ledger.url wins.
# SQLite's own 5 s is shorter than a fold into a ledger that has grown (7 s for 250,000 events into
# one of 10 million): a run started then would stop as a ledger failure instead of reporting the
# run lock's holder (exit 3), and the holder's heartbeat would fail. Five minutes is as long as a
# lock's heartbeat may be silent before the lock counts as abandoned.
SQLITE_BUSY_SECONDS = 300.0

log = logging.getLogger("capi_uploader.ledger")


class StoredEvent(NamedTuple):
    """An event as the delivery layer holds it: read back from the ledger (pending), or fresh
    from a chunk and not in the ledger yet (its outcome is then its first record). A tuple: a
    run makes one per event, and a frozen dataclass costs five times as much to make."""

    event_name: str
    event_id: str
    event_time: int
    payload: str
    stage_rank: int = 0
    action_source: str = ""
    source: str = ""


def stored_events(events: pd.DataFrame, source: str) -> list[StoredEvent]:
    """A mapped chunk's events (the engine's EVENT_COLUMNS) as the delivery layer holds them."""
    columns = [events[c].tolist() for c in ("event_name", "event_id", "event_time", "payload", "stage_rank",
                                             "action_source")]
    return [StoredEvent(name, event_id, time, payload, rank, action_source, source)
            for name, event_id, time, payload, rank, action_source in zip(*columns)]


@dataclass(frozen=True)
class FailedEvent:
    """An event Meta refused, as the summary and ``status`` show it."""

    event_name: str
    event_id: str
    last_error: str | None
    fbtrace_id: str | None


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _folded_first(method: Callable[Concatenate[Ledger, _P], _R]) -> Callable[Concatenate[Ledger, _P], _R]:
    """For a method that reads statuses or writes events: the sent outcomes this ledger has
    journaled are folded into ``events`` first (nothing to do when there are none)."""
    @functools.wraps(method)
    def folded(self: Ledger, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        self._settle()
        return method(self, *args, **kwargs)
    return folded


class Ledger:
    """All reads and writes of the ledger database.

    Only the process holding the run lock marks events sent, so only it appends to the journal
    and folds it; it folds whatever an earlier run left there (``fold``) before it reads.
    """

    def __init__(self, engine: Engine, fold_every: int = JOURNAL_FOLD) -> None:
        self.engine = engine
        self.fold_every = fold_every
        self._unfolded = 0  # events this ledger journaled since its last fold
        self._journaled = KeySet()  # their keys
        # Whether the journal held outcomes this ledger did not write (a stopped run's, which a run folds
        # first; validate, which never folds, looks them up); None until ``existing`` first asks.
        self._others_journaled: bool | None = None

    @classmethod
    def open(cls, url: str, fold_every: int = JOURNAL_FOLD) -> Ledger:
        """Connect to ``url``, creating or migrating the tables on first use."""
        engine = _engine(url)
        try:
            migrate(engine)
        except OperationalError as exc:
            raise StopRun(f"ledger.url: cannot open the ledger database ({_first_line(exc)})") from None
        return cls(engine, fold_every)

    def close(self) -> None:
        """Fold what this ledger journaled, then disconnect. A fold that fails here is left to
        the next run: the journal is durable, and the run's own error is what matters."""
        try:
            self._settle()
        except SQLAlchemyError as exc:
            log.warning("the ledger journal was not folded (%s); the next run folds it", _first_line(exc))
        finally:
            self.engine.dispose()

    def fold(self) -> None:
        """Move the journal's sent outcomes into ``events``, in one transaction and in key order:
        an event the ledger did not hold is inserted as sent (one attempt); one it held (only a
        fresh batch is journaled, so this is the safe side) becomes sent with one more attempt.
        Sorted, the inserts walk the primary-key index once, a page for all its events."""
        with self.engine.begin() as conn:
            first, last = conn.execute(select(func.min(journal.c.seq), func.max(journal.c.seq))).one()
            if last is not None:
                conn.execute(_upsert(self.engine, list(_SENT_CHANGES)).from_select(
                    [*_FOLD_COLUMNS], _journal_rows(conn.dialect.name, last)))
                conn.execute(delete(journal).where(journal.c.seq <= last))
        self._unfolded = 0
        self._journaled.clear()
        self._others_journaled = False
        if last is not None:
            _keep_statistics(self.engine, last - first + 1)  # sequence numbers: about the events folded

    def _settle(self) -> None:
        """Fold what this ledger journaled, if anything: before it reads statuses or writes events
        otherwise than by ``mark_sent``. Calls with nothing to do (an empty batch) must not fold:
        a fold writes every primary-key page its events are on, and pays when they are many."""
        if self._unfolded:
            self.fold()

    def record(self, dataset_id: str, source: str, batch: pd.DataFrame, now: float) -> int:
        """Insert new events as pending, ignoring ones already held; returns how many were new.

        ``batch`` has the columns event_id, event_name, event_time, action_source, payload.
        """
        return self._insert(dataset_id, source, batch, PENDING, now)

    def _insert(self, dataset_id: str, source: str, batch: pd.DataFrame, status: str, now: float) -> int:
        if batch.empty:
            return 0
        self._settle()
        stamp = _utc(now)
        if "stage_rank" not in batch:
            batch = batch.assign(stage_rank=0)
        if self.engine.dialect.name == "sqlite":
            return self._insert_sqlite(dataset_id, source, batch, status, stamp)
        rows = batch[RECORD_COLUMNS].assign(
            dataset_id=dataset_id, source=source, status=status, attempts=0, created_at=stamp, updated_at=stamp,
        ).to_dict("records")
        statement = _insert_ignore(self.engine)
        with self.engine.begin() as conn:
            if self.engine.dialect.insert_executemany_returning:
                # Batched inserts report no reliable rowcount here; the returned keys are exact.
                return len(conn.execute(statement.returning(events.c.event_id), rows).all())
            return conn.execute(statement, rows).rowcount

    def _insert_sqlite(self, dataset_id: str, source: str, batch: pd.DataFrame, status: str, stamp: datetime) -> int:
        """The same INSERT .. ON CONFLICT DO NOTHING as ``_insert_ignore``, as one executemany of
        plain tuples: SQLAlchemy's per-row parameter processing costs more than SQLite's insert.
        The new rows are counted exactly from the connection's change counter."""
        dialect = self.engine.dialect
        when = _sql_time(dialect)(stamp)
        constant = (dataset_id, source, status, 0, when, when)
        columns = [*RECORD_COLUMNS, "dataset_id", "source", "status", "attempts", "created_at", "updated_at"]
        sql = (f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
               "ON CONFLICT DO NOTHING")
        # In delivery order (the first of a repeated key kept, as the conflict clause would): each
        # batch delivery later marks sent then sits on a few pages, not one page per event.
        batch = batch.drop_duplicates(["event_name", "event_id"]).sort_values(
            ["event_time", "stage_rank", "event_name", "event_id"], kind="stable")
        rows = [(*row, *constant) for row in zip(*(batch[c].tolist() for c in RECORD_COLUMNS))]
        with self.engine.begin() as conn:
            driver = conn.connection.dbapi_connection
            assert driver is not None, "an open connection has its driver connection"
            before = driver.total_changes
            conn.exec_driver_sql(sql, rows)
            return driver.total_changes - before

    def is_processed(self, source: str, sha256: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.scalar(select(files.c.sha256).where(files.c.source == source, files.c.sha256 == sha256))
        return found is not None

    def mark_processed(self, source: str, sha256: str, name: str, rows: int, now: float) -> None:
        """Remember a file as done, by content, so a re-dropped copy is skipped."""
        with self.engine.begin() as conn:
            conn.execute(_insert_ignore(self.engine, files),
                         [{"source": source, "sha256": sha256, "name": name[:255], "rows": rows,
                           "processed_at": _utc(now)}])

    def cursor(self, source: str) -> str | None:
        """Where a SQL source's incremental reads got to (ISO 8601 UTC), or None before its first run."""
        with self.engine.connect() as conn:
            return conn.scalar(select(cursors.c.value).where(cursors.c.source == source))

    def set_cursor(self, source: str, value: str, now: float) -> None:
        """Store a source's cursor; called only once every row up to it is recorded."""
        with self.engine.begin() as conn:
            found = conn.execute(update(cursors).where(cursors.c.source == source)
                                 .values(value=value, updated_at=_utc(now))).rowcount
            if not found:
                conn.execute(insert(cursors).values(source=source, value=value, updated_at=_utc(now)))

    @_folded_first
    def expire(self, dataset_id: str, now: float) -> int:
        """Mark pending events too old for Meta as expired; they are never sent."""
        stamp = _utc(now)
        with self.engine.begin() as conn:
            return conn.execute(
                update(events).where(events.c.dataset_id == dataset_id, IS_PENDING,
                                     _older_than_window(now))
                .values(status=EXPIRED, updated_at=stamp, last_error="older than Meta accepts")
            ).rowcount

    @_folded_first
    def pending(self, dataset_id: str, page: int) -> Iterator[list[StoredEvent]]:
        """Pending events oldest first, ``page`` at a time; keyset paging, so events whose
        batch failed (and stay pending) are not read again in the same pass."""
        order = (events.c.event_time, events.c.stage_rank, events.c.event_name, events.c.event_id)
        after: tuple[int, int, str, str] | None = None
        while True:
            query = (select(events.c.event_name, events.c.event_id, events.c.event_time, events.c.payload,
                            events.c.stage_rank, events.c.action_source, events.c.source)
                     .where(events.c.dataset_id == dataset_id, IS_PENDING)
                     .order_by(*order).limit(page))
            if after is not None:
                query = query.where(tuple_(*order) > after)
            with self.engine.connect() as conn:
                rows = [StoredEvent(*row) for row in conn.execute(query).all()]
            if not rows:
                return
            yield rows
            last = rows[-1]
            after = (last.event_time, last.stage_rank, last.event_name, last.event_id)

    def mark_sent(self, dataset_id: str, batch: Sequence[StoredEvent], fbtrace_id: str, now: float,
                  fresh: bool = True) -> None:
        """Meta accepted these events: sent. Fresh events (not in ``events`` yet) are appended to
        the journal and committed before this returns (``fold`` moves them into ``events``); held
        ones (the backlog) are updated in place, where their rows lie in delivery order, a few
        pages a batch. Their payload is not kept: Meta has it, and the hashed user data need not
        be stored any longer (it is 85% of a row)."""
        if not batch:
            return
        if not fresh:
            self._settle()
            self._outcome(dataset_id, batch, SENT, now, status=SENT, fbtrace_id=fbtrace_id, sent_at=_utc(now),
                          last_error=None, payload="")
            return
        stamp = _utc(now)
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "sqlite":
                _journal_sqlite(conn, dataset_id, batch, fbtrace_id, stamp)
            elif self.engine.dialect.driver == "psycopg":
                _journal_copy(conn, dataset_id, batch, fbtrace_id, stamp)
            else:
                conn.execute(insert(journal), [dict(zip(_JOURNAL_COLUMNS, row))
                                               for row in _journal_tuples(dataset_id, batch, fbtrace_id, stamp)])
        self._journaled.add(dataset_id, [(e.event_name, e.event_id) for e in batch])
        self._unfolded += len(batch)
        if self._unfolded >= self.fold_every:
            self.fold()

    @_folded_first
    def mark_attempt(self, dataset_id: str, batch: Sequence[StoredEvent], error: str,
                     fbtrace_id: str | None, now: float) -> None:
        """Count a failed attempt; the events stay pending (fresh ones are recorded pending) for the next run."""
        self._outcome(dataset_id, batch, PENDING, now, last_error=error[:2000], fbtrace_id=fbtrace_id)

    @_folded_first
    def hold(self, dataset_id: str, batch: Sequence[StoredEvent], now: float) -> None:
        """Fresh events this run could not send (Meta stopped answering): pending, never attempted."""
        self._outcome(dataset_id, batch, PENDING, now, attempts=0)

    def _outcome(self, dataset_id: str, batch: Sequence[StoredEvent], fresh_status: str, now: float,
                 attempts: int = 1, **changes: Any) -> None:
        """Write a batch's outcome: an event already held gets ``changes`` and one more attempt; a
        fresh one is inserted with ``fresh_status``, one attempt and the same values. One statement
        (an upsert on the primary key) serves both, so a batch may mix them."""
        if not batch:
            return
        stamp = _utc(now)
        fixed = {"dataset_id": dataset_id, "status": fresh_status, "attempts": attempts, "created_at": stamp,
                 "sent_at": None, "last_error": None, "fbtrace_id": None, **changes, "updated_at": stamp}
        changed = [*changes, "updated_at"]
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "sqlite":
                _upsert_sqlite(conn, batch, fixed, changed)
            else:
                conn.execute(_upsert(self.engine, changed), [{**_event_row(e), **fixed} for e in batch])

    def cancel(self, dataset_id: str, source: str, batch: pd.DataFrame, now: float) -> set[tuple[str, str]]:
        """Conversions cancelled in the CRM: never sent from now on (recorded as cancelled when
        new, pending ones switched to cancelled). Returns the (event_name, event_id) keys that
        had already been sent, which the cancellation policy may answer with a refund."""
        if batch.empty:
            return set()
        self._insert(dataset_id, source, batch, CANCELLED, now)  # folds the journal first
        with self.engine.begin() as conn:
            statuses = _statuses(conn, dataset_id, list(zip(batch["event_name"], batch["event_id"])))
            pending = [StoredEvent(name, event_id, 0, "") for (name, event_id), status in statuses.items()
                       if status == PENDING]
            if pending:
                _update_keys(conn, dataset_id, pending, status=CANCELLED, updated_at=_utc(now))
        return {key for key, status in statuses.items() if status == SENT}

    def existing(self, dataset_id: str, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (event_name, event_id) keys the ledger holds, whatever their status
        (those in the journal too)."""
        with self.engine.connect() as conn:
            held = set(_statuses(conn, dataset_id, keys))
            if self._others_journaled is None:
                self._others_journaled = conn.scalar(select(journal.c.seq).limit(1)) is not None
            if self._others_journaled:
                held.update(_in_journal(conn, dataset_id, keys))
        if self._journaled:
            held.update(key for key, journaled in zip(keys, self._journaled.among(dataset_id, keys)) if journaled)
        return held

    @_folded_first
    def mark_failed(self, dataset_id: str, event: StoredEvent, error: str, fbtrace_id: str | None,
                    now: float) -> None:
        """Meta refused this event itself: it is not sent again until ``requeue_failed``."""
        self._outcome(dataset_id, [event], FAILED, now, status=FAILED, last_error=error[:2000], fbtrace_id=fbtrace_id)

    @_folded_first
    def requeue_failed(self, dataset_id: str, now: float) -> tuple[int, int]:
        """Failed events back to pending (once the operator fixed the cause); those now too
        old for Meta become expired instead. Returns (requeued, expired)."""
        stamp = _utc(now)
        failed = and_(events.c.dataset_id == dataset_id, events.c.status == FAILED)
        with self.engine.begin() as conn:
            expired = conn.execute(update(events).where(failed, _older_than_window(now))
                                   .values(status=EXPIRED, updated_at=stamp)).rowcount
            requeued = conn.execute(update(events).where(failed)
                                    .values(status=PENDING, attempts=0, updated_at=stamp)).rowcount
        return requeued, expired

    @_folded_first
    def failed_events(self, dataset_id: str, limit: int = 20) -> list[FailedEvent]:
        """The most recently failed events, with Meta's message and fbtrace_id."""
        query = (select(events.c.event_name, events.c.event_id, events.c.last_error, events.c.fbtrace_id)
                 .where(events.c.dataset_id == dataset_id, events.c.status == FAILED)
                 .order_by(events.c.updated_at.desc(), events.c.event_id).limit(limit))
        with self.engine.connect() as conn:
            return [FailedEvent(*row) for row in conn.execute(query)]

    @_folded_first
    def expiring_soon(self, dataset_id: str, now: float, within: float = 86_400) -> int:
        """Pending events that pass Meta's age limit within ``within`` seconds."""
        with self.engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(events).where(
                events.c.dataset_id == dataset_id, IS_PENDING, _older_than_window(now + within))) or 0

    @_folded_first
    def count(self, dataset_id: str, status: str) -> int:
        which = IS_PENDING if status == PENDING else events.c.status == status
        with self.engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(events)
                               .where(events.c.dataset_id == dataset_id, which)) or 0


def _keep_statistics(engine: Engine, added: int) -> None:
    """PostgreSQL: ``ANALYZE events`` when ``added`` rows are a tenth or more of what its statistics
    last counted. The ledger's look-ups are planned from them; taken while the table was empty (a new
    ledger's first run, or a server without autovacuum), they make a look-up of 500 keys read every
    event of the same name instead of probing the primary key for each: 96 ms instead of 0.9 ms at
    750,000 events, and a million-row run into a new ledger took 179 s instead of 81. Autovacuum would
    refresh them by the same rule, but later, and some servers run without it."""
    if engine.dialect.name != "postgresql" or added <= 0:
        return
    with engine.begin() as conn:
        counted = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = 'events'::regclass").scalar()
        if counted is None or counted < 10 * added:
            conn.exec_driver_sql("ANALYZE events")


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            waits = {} if "timeout" in parsed.query else {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}}
            engine = create_engine(url, **waits)
            event.listen(engine, "connect", _sqlite_durability)
            return engine
        return create_engine(url)
    except (ArgumentError, NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConfigError(f"ledger.url: cannot use {make_url(url).render_as_string(hide_password=True)!r} "
                          f"({_first_line(exc)})") from None


def _sqlite_durability(connection: Any, record: Any) -> None:
    """A file ledger on SQLite: write-ahead log, synced at checkpoints rather than at every commit.

    A commit is then durable against a crash of the process (a SIGKILL, an exception, an OOM
    kill): it is in the log when ``commit`` returns. A power cut or a crash of the machine itself
    may lose the last few commits, never more and never out of order (the log is replayed up to
    its last complete commit), so a lost ``sent`` mark means events are sent again with their
    same event_id, and a lost record means the file is read again: nothing is lost or doubled in
    the ledger. Without this every delivered batch would wait for several fsyncs.

    The log is copied into the database every 50,000 pages (200 MB) rather than SQLite's 1,000:
    a page is written to the log at every commit that touches it (a primary-key index page is
    touched by many batches), and only its last version is copied back, so a long interval writes
    each page back once instead of many times. After a copy the log file is cut back to 64 MB.
    SQLite's own 2 MB page cache is enough: sent events reach the primary key in sorted folds of
    the journal (16 MB, which helped when each batch wrote its own, cost 25 MB of a million-row
    run's peak memory, across its connections, for no measurable gain).
    """
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA wal_autocheckpoint=50000")
    connection.execute("PRAGMA journal_size_limit=67108864")


def _insert_ignore(engine: Engine, table: Table = events) -> Insert:
    """An INSERT that skips rows whose key is already there, in each dialect's words."""
    dialect = engine.dialect.name
    if dialect in ("sqlite", "postgresql"):
        module = __import__(f"sqlalchemy.dialects.{dialect}", fromlist=["insert"])
        return module.insert(table).on_conflict_do_nothing()
    if dialect in ("mysql", "mariadb"):
        return insert(table).prefix_with("IGNORE")
    raise ConfigError(f"ledger.url: the {dialect} database is not supported for the ledger "
                      "(use SQLite, PostgreSQL or MySQL/MariaDB)")


_KEY = ("dataset_id", "event_name", "event_id")


def _upsert(engine: Engine, changed: list[str]) -> Insert:
    """INSERT, or on the key: ``changed`` columns from the new row and one more attempt."""
    dialect = engine.dialect.name
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects import mysql

        statement = mysql.insert(events)
        # No bound parameter after VALUES: PyMySQL's executemany rewrites the statement and allows none there.
        return statement.on_duplicate_key_update(attempts=literal_column("attempts + 1"),
                                                 **{c: statement.inserted[c] for c in changed})
    module = __import__(f"sqlalchemy.dialects.{dialect}", fromlist=["insert"])
    statement = module.insert(events)
    return statement.on_conflict_do_update(index_elements=list(_KEY), set_={
        "attempts": events.c.attempts + 1, **{c: statement.excluded[c] for c in changed}})


def _upsert_sqlite(conn: Connection, batch: Sequence[StoredEvent], fixed: dict[str, Any], changed: list[str]) -> None:
    """``_upsert`` as one executemany of plain tuples (see ``_insert_sqlite``)."""
    to_text = _sql_time(conn.dialect)
    constant = tuple(to_text(v) if isinstance(v, datetime) else v for v in fixed.values())
    own = [field for field in _EVENT_FIELDS if field not in fixed]
    columns = [*own, *fixed]
    updates = ", ".join(["attempts = events.attempts + 1", *(f"{c} = excluded.{c}" for c in changed)])
    sql = (f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
           f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {updates}")
    fields = operator.attrgetter(*own)
    conn.exec_driver_sql(sql, [fields(e) + constant for e in batch])


_EVENT_FIELDS = ("event_name", "event_id", "source", "event_time", "action_source", "payload", "stage_rank")
_JOURNAL_FIELDS = ("event_name", "event_id", "source", "event_time", "action_source", "stage_rank")
# What a sent outcome sets on an event the ledger held (and gives a new one); see Ledger.fold.
_SENT_CHANGES = ("status", "fbtrace_id", "sent_at", "last_error", "payload", "updated_at")
_JOURNAL_COLUMNS = ("dataset_id", *_JOURNAL_FIELDS, "fbtrace_id", "sent_at")  # what an append writes
_FOLD_COLUMNS = (*_JOURNAL_COLUMNS, "updated_at", "created_at", "status", "last_error", "payload", "attempts")


def _journal_tuples(dataset_id: str, batch: Sequence[StoredEvent], fbtrace_id: str,
                    when: Any) -> list[tuple[Any, ...]]:
    """A batch's journal rows, in ``_JOURNAL_COLUMNS`` order: every append path writes these."""
    fields = operator.attrgetter(*_JOURNAL_FIELDS)
    return [(dataset_id, *fields(e), fbtrace_id, when) for e in batch]


def _journal_sqlite(conn: Connection, dataset_id: str, batch: Sequence[StoredEvent], fbtrace_id: str,
                    stamp: datetime) -> None:
    """The journal append as one executemany of plain tuples (see ``_insert_sqlite``)."""
    sql = f"INSERT INTO journal ({', '.join(_JOURNAL_COLUMNS)}) VALUES ({', '.join('?' * len(_JOURNAL_COLUMNS))})"
    conn.exec_driver_sql(sql, _journal_tuples(dataset_id, batch, fbtrace_id, _sql_time(conn.dialect)(stamp)))


def _journal_copy(conn: Connection, dataset_id: str, batch: Sequence[StoredEvent], fbtrace_id: str,
                  stamp: datetime) -> None:
    """The journal append as one COPY (PostgreSQL through psycopg 3): 5 ms for a batch of 1,000, where
    an executemany sends 1,000 INSERTs (17 ms); a million-row run into a new ledger took 81 s before, 53-58 s
    with it."""
    driver = conn.connection.dbapi_connection
    assert driver is not None, "an open connection has its driver connection"
    with driver.cursor().copy(f"COPY journal ({', '.join(_JOURNAL_COLUMNS)}) FROM STDIN") as copy:
        for row in _journal_tuples(dataset_id, batch, fbtrace_id, stamp):
            copy.write_row(row)


def _sql_time(dialect: Dialect) -> Callable[[datetime], Any]:
    """A time as SQLAlchemy writes a DateTime column in this dialect: the raw executemany paths
    must write exactly what the ORM-free statements of the other paths would."""
    process = events.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else (lambda value: value)


def _journal_rows(dialect: str, last: int) -> Select[Any]:
    """The journal up to ``last`` as rows of ``events`` (``_FOLD_COLUMNS``), in key order. An
    event is journaled once (the sender never sends a key twice); should one ever be there
    twice, PostgreSQL, which refuses to update a row twice in one statement, takes the last."""
    key = (journal.c.dataset_id, journal.c.event_name, journal.c.event_id)
    query = select(*(journal.c[c] for c in _JOURNAL_COLUMNS),
                   journal.c.sent_at.label("updated_at"), journal.c.sent_at.label("created_at"),
                   literal(SENT).label("status"), null().label("last_error"), literal("").label("payload"),
                   literal(1).label("attempts")).where(journal.c.seq <= last)
    if dialect == "postgresql":
        latest = select(func.max(journal.c.seq)).where(journal.c.seq <= last).group_by(*key)
        query = query.where(journal.c.seq.in_(latest.scalar_subquery()))
    return query.order_by(*key, journal.c.seq)


def _event_row(event: StoredEvent) -> dict[str, Any]:
    return {field: getattr(event, field) for field in _EVENT_FIELDS}


def _update_keys(conn: Connection, dataset_id: str, batch: Sequence[StoredEvent], **values: Any) -> None:
    """Set ``values`` on these events of the dataset: one UPDATE per event name in the batch
    (usually one or two), each of which every database (SQLite too) answers from the primary key.
    A row-value IN list or an OR of names would make SQLite scan the dataset: a backlog would
    then be quadratic to deliver."""
    for name, ids in _by_name((e.event_name, e.event_id) for e in batch).items():
        conn.execute(update(events).where(events.c.dataset_id == dataset_id, events.c.event_name == name,
                                          events.c.event_id.in_(ids)).values(**values))


def _statuses(conn: Connection, dataset_id: str, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The status of each of these keys the ledger holds, looked up by primary key, 500 at a time.

    `attempts` is selected though unused: it is in no secondary index, so SQLite cannot pick the
    covering pending-events index and scan the whole dataset instead of the primary key.
    """
    found: dict[tuple[str, str], str] = {}
    for name, part in _parts(keys):
        if conn.dialect.name == "sqlite":  # the same statement without per-parameter processing
            rows = conn.exec_driver_sql(
                "SELECT event_id, status, attempts FROM events WHERE dataset_id = ? AND event_name = ? "
                f"AND event_id IN ({', '.join('?' * len(part))})", (dataset_id, name, *part))
        else:
            rows = conn.execute(select(events.c.event_id, events.c.status, events.c.attempts).where(
                events.c.dataset_id == dataset_id, events.c.event_name == name, events.c.event_id.in_(part)))
        found.update(((name, event_id), status) for event_id, status, _ in rows)
    return found


def _in_journal(conn: Connection, dataset_id: str, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these keys the journal holds: sent, not folded yet. The journal has no index on
    the key, so only a ledger that found another's outcomes there (validate after a stopped run) asks."""
    found: set[tuple[str, str]] = set()
    for name, part in _parts(keys):
        rows = conn.execute(select(journal.c.event_id).where(
            journal.c.dataset_id == dataset_id, journal.c.event_name == name, journal.c.event_id.in_(part)))
        found.update((name, event_id) for event_id in rows.scalars())
    return found


def _parts(keys: Iterable[tuple[str, str]], size: int = 500) -> Iterator[tuple[str, list[str]]]:
    """The keys as (event_name, up to `size` of its event ids): one IN list per statement."""
    for name, ids in _by_name(keys).items():
        for start in range(0, len(ids), size):
            yield name, ids[start:start + size]


def _by_name(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, event_id in keys:
        grouped.setdefault(name, []).append(event_id)
    return grouped


def _older_than_window(now: float) -> ColumnElement[bool]:
    special = [and_(events.c.action_source == src, events.c.event_time < now - days * 86400)
               for src, days in WINDOW_DAYS.items()]
    default = and_(events.c.action_source.notin_(list(WINDOW_DAYS)),
                   events.c.event_time < now - window_days("") * 86400)
    return or_(default, *special)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def ledger_failure(exc: SQLAlchemyError) -> StopRun:
    """A database error of the ledger during a run (disk full, server gone, permissions), as the
    one line the operator reads. Only what the ledger recorded counts as sent, so nothing is lost."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if "database is locked" in str(cause):  # SQLite, after SQLITE_BUSY_SECONDS (or ledger.url's timeout)
        failed, fix = ("stayed locked by another program",
                       "Close whatever holds it open for writing (a database browser, a stuck process)")
    else:
        failed, fix = "failed during the run", "Fix the database (disk space, server, permissions)"
    return StopRun(f"ledger.url: the ledger database {failed} ({_first_line(cause)}), so the run stopped. {fix} "
                   "and run again: nothing is lost, and what was sent but not recorded goes again with the same "
                   "event ids.")


@contextmanager
def stop_on_ledger_errors() -> Iterator[None]:
    """Around a run: a database error that reaches it is the ledger's (sources report their own
    as SourceError), and stops the run with ``ledger_failure``'s message, not a traceback."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise ledger_failure(exc) from exc


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
