"""Ledger tables and their migrations, one numbered step at a time.

The schema version lives in ``ledger_meta``; ``migrate`` applies every step
above it, each in its own transaction, so a ledger created by any earlier
release is brought up to date on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (BigInteger, Column, Connection, DateTime, Engine, Float, Index, Integer, MetaData,
                        PrimaryKeyConstraint, String, Table, Text, inspect, select, text, update)
from sqlalchemy.dialects.mysql import MEDIUMTEXT

metadata = MetaData()

ledger_meta = Table(
    "ledger_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)



def _event_columns() -> list[Column[Any]]:
    """Which event, from which source, when and how: the same columns in ``events`` and ``journal``."""
    return [
        Column("dataset_id", String(64), nullable=False),
        Column("event_name", String(100), nullable=False),
        Column("event_id", String(200), nullable=False),
        Column("source", String(100), nullable=False),
        Column("event_time", BigInteger, nullable=False),
        Column("action_source", String(32), nullable=False),
    ]


events = Table(
    "events", metadata,
    *_event_columns(),
    Column("payload", Text, nullable=False),  # the event as sent: hashed user data only
    Column("status", String(16), nullable=False),  # pending | sent | failed | expired | cancelled
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("fbtrace_id", String(64)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    # Place on the Conversion Leads stage ladder (0 elsewhere): stages with the same time go in order.
    Column("stage_rank", Integer, nullable=False, server_default="0"),
    # Meta deduplicates on event_name + event_id; so do we, per dataset.
    PrimaryKeyConstraint("dataset_id", "event_name", "event_id", name="pk_events"),
    # Delivery reads pending events a page at a time in exactly this order (ledger.pending): with
    # it, each page is a short range scan, not a sort of the whole backlog. Where the database can
    # (SQLite, PostgreSQL) it holds pending events only: sent ones, nearly all of a ledger, cost
    # no index entry, and the index stays the size of the backlog. Queries that should use it
    # must say status = 'pending' literally (store.IS_PENDING).
    Index("ix_events_pending", "dataset_id", "status", "event_time", "stage_rank", "event_name", "event_id",
          sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
)

# Sent outcomes not yet folded into ``events`` (store.Ledger.mark_sent and fold): appended once
# per accepted batch, in the order they happened, and moved into ``events`` in key order every
# 250,000 events (store.JOURNAL_FOLD). No index but the sequence: an append touches a few pages,
# where writing ``events`` touches one primary-key page per event once the ledger is large.
journal = Table(
    "journal", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    *_event_columns(),
    Column("stage_rank", Integer, nullable=False),
    Column("fbtrace_id", String(64)),
    Column("sent_at", DateTime, nullable=False),
)

files = Table(
    "files", metadata,
    Column("source", String(100), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("processed_at", DateTime, nullable=False),
    PrimaryKeyConstraint("source", "sha256", name="pk_files"),
)

# One row while a run holds the lock (name "run"); see uploader/ledger/lock.py.
run_lock = Table(
    "run_lock", metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(32), nullable=False),  # a random id per run
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=False),
)

# One row per run (run, backfill, scheduled): the run report's key figures and the report itself.
runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False, unique=True),
    Column("mode", String(16), nullable=False),
    Column("started_by", String(16), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=False),
    Column("duration_seconds", Float, nullable=False),
    Column("exit_code", Integer, nullable=False),
    Column("error", Text),
    Column("rows_read", Integer, nullable=False),
    Column("events_mapped", Integer, nullable=False),
    Column("events_new", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("refused", Integer, nullable=False),
    Column("sent", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("expired", Integer, nullable=False),
    Column("pending_left", Integer, nullable=False),
    Column("report_path", Text),
    # The JSON run report (figures only, no personal data); MySQL's TEXT would stop at 64 KB.
    Column("report", Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb"), nullable=False),
    Index("ix_runs_started", "started_at"),
)

# One row per SQL source: how far its incremental reads got (an ISO 8601 UTC time, the end of
# the last window read completely). Advanced only after every row up to it is in the ledger.
cursors = Table(
    "cursors", metadata,
    Column("source", String(100), primary_key=True),
    Column("value", String(64), nullable=False),
    Column("updated_at", DateTime, nullable=False),
)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=[events, files])


def _add_run_lock_and_runs(conn: Connection) -> None:
    metadata.create_all(conn, tables=[run_lock, runs])


def _add_cursors(conn: Connection) -> None:
    metadata.create_all(conn, tables=[cursors])


def _add_stage_rank(conn: Connection) -> None:
    # _v1 builds `events` from the current definition, so only ledgers made before it lack the column.
    if "stage_rank" not in {c["name"] for c in inspect(conn).get_columns("events")}:
        conn.execute(text("ALTER TABLE events ADD COLUMN stage_rank INTEGER NOT NULL DEFAULT 0"))


def _index_pending_in_delivery_order(conn: Connection) -> None:
    # ix_events_pending begins with ix_events_delivery's columns, so it replaces it (one index
    # less to write per event). A ledger made by _v1 from the current definition has it already.
    existing = {index["name"] for index in inspect(conn).get_indexes("events")}
    if "ix_events_delivery" in existing:
        on_table = " ON events" if conn.dialect.name in ("mysql", "mariadb") else ""
        conn.execute(text(f"DROP INDEX ix_events_delivery{on_table}"))
    if "ix_events_pending" not in existing:
        _pending_index().create(conn)


def _index_only_pending_events(conn: Connection) -> None:
    # MySQL/MariaDB have no partial indexes: there the index stays as it was.
    if conn.dialect.name in ("sqlite", "postgresql"):
        conn.execute(text("DROP INDEX IF EXISTS ix_events_pending"))
        _pending_index().create(conn)


def _add_journal(conn: Connection) -> None:
    metadata.create_all(conn, tables=[journal])


def _forget_sent_payloads(conn: Connection) -> None:
    # Since migration 6's release a sent event keeps no payload (Meta has it, and it is hashed
    # personal data the ledger need not hold): events sent before that lose theirs too.
    conn.execute(update(events).where(events.c.status == "sent", events.c.payload != "").values(payload=""))


def _pending_index() -> Index:
    return next(index for index in events.indexes if index.name == "ix_events_pending")


MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_v1, _add_run_lock_and_runs, _add_cursors,
                                                        _add_stage_rank, _index_pending_in_delivery_order,
                                                        _index_only_pending_events, _add_journal,
                                                        _forget_sent_payloads)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(engine: Engine) -> int:
    """Create or upgrade the ledger's tables; returns the schema version now in place."""
    with engine.begin() as conn:
        ledger_meta.create(conn, checkfirst=True)
    version = current_version(engine)
    if version > SCHEMA_VERSION:
        from uploader.errors import ConfigError

        raise ConfigError(f"ledger.url: this ledger has schema version {version}, newer than this "
                          f"capi-uploader understands ({SCHEMA_VERSION}); upgrade capi-uploader")
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        with engine.begin() as conn:
            step(conn)
            _set_version(conn, number)
    return SCHEMA_VERSION


def current_version(engine: Engine) -> int:
    """The ledger's schema version; 0 for a new database."""
    if not inspect(engine).has_table("ledger_meta"):
        return 0
    with engine.connect() as conn:
        value = conn.scalar(select(ledger_meta.c.value).where(ledger_meta.c.key == "schema_version"))
    return int(value) if value is not None else 0


def _set_version(conn: Connection, number: int) -> None:
    found = conn.execute(update(ledger_meta).where(ledger_meta.c.key == "schema_version")
                         .values(value=str(number))).rowcount
    if not found:
        conn.execute(ledger_meta.insert().values(key="schema_version", value=str(number)))
