"""The ledger on every backend it supports: SQLite here, PostgreSQL and MariaDB for real."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect, select

from uploader.ledger import EXPIRED, PENDING, SENT, Ledger, StoredEvent
from uploader.ledger.schema import SCHEMA_VERSION, current_version, events, journal

NOW = 1_795_168_800.0  # 2026-11-20T10:00:00Z
DAY = 86_400


def batch(*rows: tuple[str, str, float, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"event_id": eid, "event_name": name, "event_time": int(t), "action_source": src,
          "payload": json.dumps({"event_id": eid, "event_name": name})} for eid, name, t, src in rows])


def test_tables_are_created_then_left_alone(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    assert current_version(ledger.engine) == SCHEMA_VERSION
    assert {"ledger_meta", "events", "files"} <= set(inspect(ledger.engine).get_table_names())
    ledger.record("1", "s", batch(("a", "Purchase", NOW, "system_generated")), NOW)
    ledger.close()
    again = Ledger.open(ledger_url)  # a second open migrates nothing and keeps the rows
    assert again.count("1", PENDING) == 1
    again.close()


def test_an_event_is_recorded_once_per_dataset_name_and_id(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    first = ledger.record("1", "s", batch(("a", "Purchase", NOW, "system_generated"),
                                          ("b", "Purchase", NOW, "system_generated")), NOW)
    second = ledger.record("1", "s", batch(("a", "Purchase", NOW, "system_generated"),
                                           ("a", "Lead", NOW, "system_generated"),
                                           ("c", "Purchase", NOW, "system_generated")), NOW + 5)
    other_dataset = ledger.record("2", "s", batch(("a", "Purchase", NOW, "system_generated")), NOW)
    assert (first, second, other_dataset) == (2, 2, 1)
    with ledger.engine.connect() as conn:
        rows = conn.execute(select(events.c.event_id, events.c.event_name, events.c.status, events.c.attempts)
                            .where(events.c.dataset_id == "1")
                            .order_by(events.c.event_name, events.c.event_id)).all()
    assert [tuple(r) for r in rows] == [("a", "Lead", PENDING, 0), ("a", "Purchase", PENDING, 0),
                                        ("b", "Purchase", PENDING, 0), ("c", "Purchase", PENDING, 0)]
    ledger.close()


def test_pending_pages_oldest_first_and_sent_events_leave_the_queue(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    ledger.record("1", "s", batch(*[(f"e{i}", "Lead", NOW - i * 60, "system_generated") for i in range(5)]), NOW)
    pages = [[e.event_id for e in page] for page in ledger.pending("1", 2)]
    assert pages == [["e4", "e3"], ["e2", "e1"], ["e0"]]
    first = next(ledger.pending("1", 2))
    ledger.mark_sent("1", first, "trace-1", NOW)
    ledger.mark_attempt("1", [e for e in next(ledger.pending("1", 1))], "HTTP 500", None, NOW)
    assert [[e.event_id for e in p] for p in ledger.pending("1", 10)] == [["e2", "e1", "e0"]]
    with ledger.engine.connect() as conn:
        sent = conn.execute(select(events.c.event_id, events.c.fbtrace_id, events.c.attempts)
                            .where(events.c.status == SENT).order_by(events.c.event_id)).all()
        tried = conn.execute(select(events.c.attempts, events.c.last_error)
                             .where(events.c.event_id == "e2")).one()
    assert [tuple(r) for r in sent] == [("e3", "trace-1", 1), ("e4", "trace-1", 1)]
    assert tuple(tried) == (1, "HTTP 500")
    ledger.close()


def test_events_past_their_window_expire_and_physical_store_gets_62_days(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    ledger.record("1", "s", batch(("fresh", "Lead", NOW - 6 * DAY, "system_generated"),
                                  ("stale", "Lead", NOW - 8 * DAY, "phone_call"),
                                  ("store", "Purchase", NOW - 30 * DAY, "physical_store"),
                                  ("ancient", "Purchase", NOW - 63 * DAY, "physical_store")), NOW)
    assert ledger.expire("1", NOW) == 2
    assert ledger.count("1", EXPIRED) == 2
    assert sorted(e.event_id for p in ledger.pending("1", 10) for e in p) == ["fresh", "store"]
    ledger.close()


def test_processed_files_are_remembered_by_content(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    assert not ledger.is_processed("s", "ab" * 32)
    ledger.mark_processed("s", "ab" * 32, "deals.csv", 10, NOW)
    ledger.mark_processed("s", "ab" * 32, "deals-copy.csv", 10, NOW)  # same content again: no error
    assert ledger.is_processed("s", "ab" * 32)
    assert not ledger.is_processed("other", "ab" * 32)
    ledger.close()


def test_a_newer_schema_is_refused_with_advice(tmp_path) -> None:
    from uploader.errors import ConfigError

    url = f"sqlite:///{tmp_path / 'l.db'}"
    Ledger.open(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE ledger_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ConfigError, match="schema version 99, newer than this capi-uploader understands"):
        Ledger.open(url)


def test_sqlite_finds_events_by_primary_key_when_marking_and_cancelling(tmp_path) -> None:
    """Marking a backlog sent must not scan the dataset per batch (that made delivery quadratic)."""
    from sqlalchemy import event

    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    ledger.record("1", "s", batch(*[(f"e{i}", name, NOW, "system_generated")
                                    for i in range(20) for name in ("Lead", "Purchase")]), NOW)
    seen: list[tuple[str, object]] = []
    event.listen(ledger.engine, "before_cursor_execute",
                 lambda conn, cursor, sql, params, context, many: seen.append((sql, params)))
    page = next(ledger.pending("1", 10))
    ledger.mark_sent("1", page, "T", NOW)
    ledger.cancel("1", "s", batch(("e1", "Lead", NOW, "system_generated"), ("e2", "Purchase", NOW,
                                                                           "system_generated")), NOW)
    keyed = [(sql, params) for sql, params in seen if "event_id IN" in sql]
    assert keyed, "no keyed statement ran"
    with ledger.engine.connect() as conn:
        for sql, params in keyed:
            plan = " ".join(str(row) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
            assert "sqlite_autoindex_events_1 (dataset_id=? AND event_name=? AND event_id=?)" in plan, (sql, plan)
    ledger.close()


def test_a_fresh_batch_outcome_is_its_events_first_record(ledger_url: str) -> None:
    """Fresh events go to Meta before the ledger holds them: the outcome inserts them, with
    everything a later run needs (source, action_source, and the payload while it is pending)."""
    ledger = Ledger.open(ledger_url)
    fresh = [StoredEvent("Purchase", f"f{i}", int(NOW) - i, f'{{"event_id":"f{i}"}}', 0, "phone_call", "crm")
             for i in range(4)]
    ledger.mark_sent("1", fresh[:2], "trace-ok", NOW)
    ledger.mark_attempt("1", fresh[2:3], "HTTP 503", "trace-503", NOW)
    ledger.hold("1", fresh[3:], NOW)  # never attempted: sending had stopped
    ledger.mark_sent("1", fresh[2:3], "trace-later", NOW + 60)  # held before: updated, one more attempt
    ledger.fold()  # a sent outcome reaches `events` when the journal is folded
    with ledger.engine.connect() as conn:
        rows = conn.execute(select(events.c.event_id, events.c.status, events.c.attempts, events.c.fbtrace_id,
                                   events.c.last_error, events.c.source, events.c.action_source, events.c.payload)
                            .order_by(events.c.event_id)).all()
    # Once Meta has an event its payload is not kept; a pending one keeps it for the next run.
    assert [tuple(r) for r in rows] == [
        ("f0", SENT, 1, "trace-ok", None, "crm", "phone_call", ""),
        ("f1", SENT, 1, "trace-ok", None, "crm", "phone_call", ""),
        ("f2", SENT, 2, "trace-later", None, "crm", "phone_call", ""),
        ("f3", PENDING, 0, None, None, "crm", "phone_call", '{"event_id":"f3"}')]
    assert [[e.event_id for e in page] for page in ledger.pending("1", 10)] == [["f3"]]
    ledger.close()


def test_the_pending_index_holds_pending_events_only_and_serves_each_page(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    ledger.record("1", "s", batch(*[(f"e{i}", "Lead", NOW - i, "system_generated") for i in range(6)]), NOW)
    ledger.mark_sent("1", next(ledger.pending("1", 4)), "T", NOW)
    assert [e.event_id for e in next(ledger.pending("1", 10))] == ["e1", "e0"]
    indexes = {index["name"]: index for index in inspect(ledger.engine).get_indexes("events")}
    assert "ix_events_pending" in indexes
    if ledger.engine.dialect.name == "sqlite":
        with ledger.engine.connect() as conn:
            sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'ix_events_pending'").scalar()
            assert sql.endswith("WHERE status = 'pending'")
            # Only the two pending events have an entry; the page query is answered from it, unsorted.
            assert conn.exec_driver_sql("SELECT count(*) FROM events INDEXED BY ix_events_pending "
                                        "WHERE status = 'pending'").scalar() == 2
            seen: list[tuple[str, object]] = []
            from sqlalchemy import event as sa_event

            sa_event.listen(ledger.engine, "before_cursor_execute",
                            lambda c, cursor, statement, params, context, many: seen.append((statement, params)))
            list(ledger.pending("1", 10))
            page_sql, params = next((s, p) for s, p in seen if "ORDER BY" in s)
            plan = " ".join(str(r) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + page_sql, params))
            assert "USING INDEX ix_events_pending" in plan and "TEMP B-TREE" not in plan, plan
    ledger.close()


def table_rows(ledger: Ledger, table: str) -> list[tuple[object, ...]]:
    with ledger.engine.connect() as conn:
        if table == "journal":
            return [tuple(r) for r in conn.execute(select(journal.c.event_id, journal.c.fbtrace_id)
                                                   .order_by(journal.c.seq))]
        return [tuple(r) for r in conn.execute(select(events.c.event_id, events.c.status, events.c.attempts,
                                                      events.c.fbtrace_id, events.c.payload)
                                               .order_by(events.c.event_id))]


def fresh(*ids: str) -> list[StoredEvent]:
    return [StoredEvent("Lead", i, int(NOW), f'{{"event_id":"{i}"}}', 0, "system_generated", "crm") for i in ids]


def test_sent_batches_wait_in_the_journal_and_are_folded_every_few_events(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url, fold_every=5)
    ledger.mark_sent("1", fresh("a", "b", "c"), "T1", NOW)
    assert table_rows(ledger, "events") == []  # committed to the journal, not yet folded
    assert table_rows(ledger, "journal") == [("a", "T1"), ("b", "T1"), ("c", "T1")]
    # The ledger already holds them: a repeat of these keys in a later chunk is not fresh.
    assert ledger.existing("1", [("Lead", "a"), ("Lead", "z")]) == {("Lead", "a")}
    assert ledger.existing("2", [("Lead", "a")]) == set()  # per dataset
    ledger.mark_sent("1", fresh("d", "e"), "T2", NOW)  # 5 journaled: folded
    assert table_rows(ledger, "journal") == []
    assert table_rows(ledger, "events") == [(i, SENT, 1, t, "") for i, t in
                                            [("a", "T1"), ("b", "T1"), ("c", "T1"), ("d", "T2"), ("e", "T2")]]
    ledger.mark_sent("1", fresh("f"), "T3", NOW)
    assert ledger.count("1", SENT) == 6  # a status read folds first
    assert table_rows(ledger, "journal") == []
    ledger.close()


def test_a_journal_left_by_a_killed_run_is_folded_by_the_next_one(ledger_url: str) -> None:
    killed = Ledger.open(ledger_url)
    killed.record("1", "s", batch(("held", "Lead", NOW, "system_generated")), NOW)  # a backlog event
    killed.mark_attempt("1", [next(killed.pending("1", 1))[0]], "HTTP 503", None, NOW)
    killed.mark_sent("1", [*fresh("new"), next(killed.pending("1", 1))[0]], "T", NOW)
    killed.engine.dispose()  # killed: no close, nothing folded
    from uploader.ledger.overview import counts
    nxt = Ledger.open(ledger_url)
    # status, before any run folds it, counts the journal as sent and the backlog event no more as pending
    assert counts(nxt.engine, "1") == [("crm", "Lead", SENT, 1), ("s", "Lead", SENT, 1)]
    nxt.fold()  # what a run does once it holds the run lock
    assert table_rows(nxt, "journal") == []
    assert table_rows(nxt, "events") == [("held", SENT, 2, "T", ""), ("new", SENT, 1, "T", "")]
    assert nxt.existing("1", [("Lead", "new"), ("Lead", "held")]) == {("Lead", "new"), ("Lead", "held")}
    assert counts(nxt.engine, "1") == [("crm", "Lead", SENT, 1), ("s", "Lead", SENT, 1)]
    nxt.fold()  # nothing left: a no-op
    assert table_rows(nxt, "events") == [("held", SENT, 2, "T", ""), ("new", SENT, 1, "T", "")]
    nxt.close()


def test_a_ledger_that_does_not_fold_still_sees_what_a_killed_run_journaled(ledger_url: str) -> None:
    killed = Ledger.open(ledger_url)
    killed.mark_sent("1", fresh("new"), "T", NOW)
    killed.engine.dispose()  # killed: nothing folded
    looking = Ledger.open(ledger_url)  # validate: no run lock, so it never folds
    assert looking.existing("1", [("Lead", "new"), ("Lead", "other")]) == {("Lead", "new")}
    assert looking.existing("2", [("Lead", "new")]) == set()  # per dataset
    looking.close()
    assert table_rows(looking, "journal") == [("new", "T")]  # still there for the next run to fold


def test_closing_the_ledger_folds_its_journal(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    ledger.mark_sent("1", fresh("a"), "T", NOW)
    ledger.close()
    again = Ledger.open(ledger_url)
    assert table_rows(again, "journal") == []
    assert table_rows(again, "events") == [("a", SENT, 1, "T", "")]
    again.close()


def test_a_backlog_batch_is_marked_sent_in_place_not_journaled(ledger_url: str) -> None:
    """Held events' rows lie in delivery order: updating them in place touches a few pages a batch,
    where a fold in key order would touch one page per event."""
    ledger = Ledger.open(ledger_url)
    ledger.record("1", "s", batch(*[(f"h{i}", "Lead", NOW - i, "system_generated") for i in range(3)]), NOW)
    ledger.mark_sent("1", next(ledger.pending("1", 2)), "T", NOW, fresh=False)
    assert table_rows(ledger, "journal") == []
    assert [r[:4] for r in table_rows(ledger, "events")] == [("h0", PENDING, 0, None), ("h1", SENT, 1, "T"),
                                                             ("h2", SENT, 1, "T")]
    ledger.close()


def test_postgresql_statistics_are_taken_when_a_fold_grows_events_by_a_tenth(postgres_ledger_url: str) -> None:
    # PostgreSQL plans the look-ups from the statistics of events: taken while the table was empty,
    # each look-up read every event of a name, and a million-row run into a new ledger took 200 s.
    ledger = Ledger.open(postgres_ledger_url, fold_every=10**9)

    def counted() -> float:
        with ledger.engine.connect() as conn:
            return conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = 'events'::regclass").scalar()

    for size, expected in ((1200, 1200), (50, 1200), (200, 1450)):  # 50 is under a tenth of 1,200; 200 is not
        ledger.mark_sent("ds", fresh(*(f"e{size}-{i}" for i in range(size))), "T", NOW)
        ledger.fold()
        assert counted() == expected
    ledger.close()
