"""Read-only queries for ``status``: what the ledger holds and what needs the operator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, MetaData, Select, Table, and_, case, func, inspect, select

from uploader.ledger.schema import events, journal
from uploader.ledger.store import FAILED, IS_PENDING, SENT
from uploader.validation import WINDOW_DAYS, window_days


@dataclass(frozen=True)
class Expiring:
    """A pending event that passes Meta's age limit soon."""

    source: str
    event_name: str
    event_id: str
    event_time: int
    expires_at: int


@dataclass(frozen=True)
class Failed:
    """An event Meta refused, with its message."""

    source: str
    event_name: str
    event_id: str
    attempts: int
    last_error: str | None
    fbtrace_id: str | None
    updated_at: datetime


def counts(engine: Engine, dataset_id: str | None) -> list[tuple[str, str, str, int]]:
    """(source, event_name, status, events) for every combination the ledger holds, the sent
    outcomes still in the journal (a run is sending, or one stopped before folding) counted as
    sent: once folded they are sent, whatever ``events`` holds for them now."""
    query = (select(events.c.source, events.c.event_name, events.c.status, func.count())
             .where(*_dataset(dataset_id))
             .group_by(events.c.source, events.c.event_name, events.c.status))
    totals: dict[tuple[str, str, str], int] = {}
    with engine.connect() as conn:
        for source, name, status, count in conn.execute(query):
            totals[(source, name, status)] = int(count)
        for source, name, held, count in conn.execute(_journaled(dataset_id)):
            totals[(source, name, SENT)] = totals.get((source, name, SENT), 0) + int(count)
            if held is not None:  # a pending event of the backlog, until the fold
                totals[(source, name, held)] -= int(count)
    return [(*key, count) for key, count in sorted(totals.items()) if count > 0]


def _journaled(dataset_id: str | None) -> Select[Any]:
    """The journal's events by source, name, and the status ``events`` holds for them (None: not there)."""
    key = [journal.c[c] == events.c[c] for c in ("dataset_id", "event_name", "event_id")]
    where = [journal.c.dataset_id == dataset_id] if dataset_id else []
    return (select(journal.c.source, journal.c.event_name, events.c.status, func.count())
            .select_from(journal.outerjoin(events, and_(*key))).where(*where)
            .group_by(journal.c.source, journal.c.event_name, events.c.status))


def expiring(engine: Engine, dataset_id: str | None, now: float, within: float = 86_400,
             limit: int = 20) -> tuple[int, list[Expiring]]:
    """Pending events whose age limit falls before ``now + within``: their number and the first ones."""
    expires_at = events.c.event_time + _window_seconds()
    where = [*_dataset(dataset_id), IS_PENDING, expires_at < now + within]
    query = (select(events.c.source, events.c.event_name, events.c.event_id, events.c.event_time, expires_at)
             .where(*where).order_by(expires_at, events.c.event_id).limit(limit))
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(events).where(*where)) or 0
        return int(total), [Expiring(*row) for row in conn.execute(query)]


def failed(engine: Engine, dataset_id: str | None, limit: int = 20) -> list[Failed]:
    """The latest events Meta refused (status ``failed``); their number is in ``counts``. No index
    holds failed events, so this reads the whole table: ask only when ``counts`` has some."""
    query = (select(events.c.source, events.c.event_name, events.c.event_id, events.c.attempts,
                    events.c.last_error, events.c.fbtrace_id, events.c.updated_at)
             .where(*_dataset(dataset_id), events.c.status == FAILED)
             .order_by(events.c.updated_at.desc(), events.c.event_id).limit(limit))
    with engine.connect() as conn:
        return [Failed(*row) for row in conn.execute(query)]


def cursors(engine: Engine) -> list[dict[str, Any]] | None:
    """Every row of the SQL sources' ``cursors`` table; None when this ledger has none."""
    if not inspect(engine).has_table("cursors"):
        return None
    table = Table("cursors", MetaData(), autoload_with=engine)  # whatever its columns are today
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(table)).mappings()]


def _window_seconds() -> ColumnElement[int]:
    special = [(events.c.action_source == source, days * 86_400) for source, days in WINDOW_DAYS.items()]
    return case(*special, else_=window_days("") * 86_400)


def _dataset(dataset_id: str | None) -> list[ColumnElement[bool]]:
    return [events.c.dataset_id == dataset_id] if dataset_id else []


def utc(seconds: float) -> datetime:
    """Unix seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)
