"""The SQL source's window and cursor rules, without a database: where a run starts and
ends, what look-back and a backfill do, and when the stored cursor moves."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors import Window
from connectors.sql_query import SqlQuery, SqlWindow
from uploader.settings import Secret, SourceSettings

NOW = 1_795_168_800.75  # 2026-11-20T10:00:00.75Z
HOUR, DAY = 3600, 86_400


class State:
    """A SourceState in memory."""

    def __init__(self, cursor: str | None = None) -> None:
        self.cursors: dict[str, str] = {"crm": cursor} if cursor else {}

    def cursor(self, source: str) -> str | None:
        return self.cursors.get(source)

    def set_cursor(self, source: str, value: str, now: float) -> None:
        self.cursors[source] = value

    def is_processed(self, source: str, sha256: str) -> bool:
        return False

    def mark_processed(self, source: str, sha256: str, name: str, rows: int, now: float) -> None:
        pass


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def unit(window: Window | None = None, **settings: object) -> SqlWindow:
    source = SourceSettings(name="crm", type="sql", url=Secret("sqlite:///crm.db"), query=Path("q.sql"),
                            cursor="updated_at", **settings)  # type: ignore[arg-type]
    (only,) = SqlQuery(source, chunk_size=100, now=NOW).units(window)
    return only


def test_the_first_run_reads_the_last_seven_days_up_to_the_run_start() -> None:
    first, state = unit(), State()
    assert not first.is_done(state)
    assert (first.since, first.until) == (NOW // 1 - 7 * DAY, NOW)
    assert first.label == "updated_at 2026-11-13T10:00Z..2026-11-20T10:00Z"
    assert first.key == "crm:2026-11-13T10:00:00Z..2026-11-20T10:00:00.750000Z"
    first.commit(state, 10, NOW)
    assert state.cursors == {"crm": "2026-11-20T10:00:00.750000Z"}


def test_the_next_run_starts_at_the_whole_second_of_the_cursor() -> None:
    # Rows a database stored as 10:00:00 (to the second) may be from after the last run began.
    later = unit()
    assert not later.is_done(State("2026-11-20T10:00:00.750000Z"))
    assert later.since == NOW // 1


def test_a_configured_start_and_then_the_stored_cursor_minus_the_lookback() -> None:
    started = unit(start=NOW - 2 * DAY)
    assert not started.is_done(State()) and started.since == NOW // 1 - 2 * DAY
    later = unit(lookback=2 * HOUR, start=NOW - 2 * DAY)
    assert not later.is_done(State(iso(NOW - 5 * HOUR)))
    assert (later.since, later.until) == (NOW // 1 - 7 * HOUR, NOW)


def test_an_empty_window_is_done_and_the_cursor_never_moves_back() -> None:
    future = unit(start=NOW + HOUR)
    assert future.is_done(State())
    state = State(iso(NOW + HOUR))  # a cursor ahead of this run (the clock was set back)
    behind = unit(lookback=2 * HOUR)
    assert not behind.is_done(state)
    behind.commit(state, 0, NOW)
    assert state.cursors["crm"] == iso(NOW + HOUR)


@pytest.mark.parametrize(("since", "until"), [
    pytest.param(NOW - 3 * DAY, None, id="from-before-the-cursor-to-now"),
    pytest.param(NOW - 3 * DAY, NOW - 10 * HOUR, id="an-older-range"),
    pytest.param(NOW - 6 * HOUR, NOW - 2 * HOUR, id="after-the-cursor"),
    pytest.param(None, NOW + DAY, id="open-start-capped-at-now"),
])
def test_a_backfill_reads_its_window_and_leaves_the_cursor(since: float | None, until: float | None) -> None:
    state = State(iso(NOW - 8 * HOUR))
    backfill = unit(Window(since, until), lookback=HOUR)
    assert not backfill.is_done(state)
    assert backfill.since == (since // 1 if since else 0)
    assert backfill.until == min(until or NOW, NOW)
    assert backfill._params("postgresql")["oldest"] == datetime.fromtimestamp(
        min(backfill.since, NOW - 7 * DAY), UTC)
    backfill.commit(state, 0, NOW)
    assert state.cursors["crm"] == iso(NOW - 8 * HOUR)
    first = unit(Window(since, until))
    first.is_done(State())
    first.commit(state := State(), 0, NOW)
    assert state.cursors == {}


def test_reading_before_the_cursor_is_known_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="call it before chunks"):
        next(unit().chunks())
