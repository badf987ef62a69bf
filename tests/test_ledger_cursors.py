"""SQL sources' cursors in the ledger, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Connection, Engine, create_engine, inspect, select, update

from tests.test_ledger import batch
from uploader.ledger import SENT, Ledger, schema
from uploader.ledger.schema import SCHEMA_VERSION, current_version, events, migrate

NOW = 1_795_168_800.0


def ledger_before(migration: Callable[[Connection], None], ledger_url: str,
                  monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A ledger at the schema version just before ``migration``, as an older release left it."""
    step = schema.MIGRATIONS.index(migration)
    with monkeypatch.context() as older:
        older.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:step])
        older.setattr(schema, "SCHEMA_VERSION", step)
        engine = create_engine(ledger_url)
        migrate(engine)
    assert current_version(engine) == step
    return engine


def test_a_cursor_is_stored_per_source_and_replaced(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    assert ledger.cursor("crm_deals") is None
    ledger.set_cursor("crm_deals", "2026-11-20T10:00:00Z", NOW)
    ledger.set_cursor("crm_leads", "2026-11-20T09:00:00Z", NOW)
    ledger.set_cursor("crm_deals", "2026-11-21T10:00:00Z", NOW + 86_400)
    ledger.set_cursor("crm_deals", "2026-11-21T10:00:00Z", NOW + 86_401)  # the same value again
    assert (ledger.cursor("crm_deals"), ledger.cursor("crm_leads")) == ("2026-11-21T10:00:00Z",
                                                                         "2026-11-20T09:00:00Z")
    ledger.close()
    reopened = Ledger.open(ledger_url)
    assert reopened.cursor("crm_deals") == "2026-11-21T10:00:00Z"
    reopened.close()


def test_a_ledger_from_before_cursors_gains_the_table_on_open(
        ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = ledger_before(schema._add_cursors, ledger_url, monkeypatch)
    assert not inspect(engine).has_table("cursors")
    engine.dispose()

    ledger = Ledger.open(ledger_url)
    assert current_version(ledger.engine) == SCHEMA_VERSION
    assert inspect(ledger.engine).has_table("cursors") and ledger.cursor("crm") is None
    ledger.close()


def test_a_ledger_with_the_full_pending_index_gets_the_pending_only_one_on_open(
        ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = ledger_before(schema._index_only_pending_events, ledger_url, monkeypatch)
    on_table = " ON events" if engine.dialect.name in ("mysql", "mariadb") else ""
    with engine.begin() as conn:  # the index as release 5 made it: every event in it
        conn.exec_driver_sql(f"DROP INDEX ix_events_pending{on_table}")
        conn.exec_driver_sql("CREATE INDEX ix_events_pending ON events "
                             "(dataset_id, status, event_time, stage_rank, event_name, event_id)")
    engine.dispose()

    ledger = Ledger.open(ledger_url)
    assert current_version(ledger.engine) == SCHEMA_VERSION
    (index,) = [i for i in inspect(ledger.engine).get_indexes("events") if i["name"] == "ix_events_pending"]
    assert index["column_names"] == ["dataset_id", "status", "event_time", "stage_rank", "event_name", "event_id"]
    if ledger.engine.dialect.name == "sqlite":
        with ledger.engine.connect() as conn:
            sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'ix_events_pending'").scalar()
        assert sql.endswith("WHERE status = 'pending'")
    if ledger.engine.dialect.name == "postgresql":
        with ledger.engine.connect() as conn:
            definition = conn.exec_driver_sql("SELECT indexdef FROM pg_indexes "
                                              "WHERE indexname = 'ix_events_pending'").scalar()
        assert definition.endswith("WHERE ((status)::text = 'pending'::text)")
    ledger.close()


def test_events_sent_by_an_older_release_lose_their_payload_on_open(
        ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = ledger_before(schema._forget_sent_payloads, ledger_url, monkeypatch)
    older = Ledger(engine)  # as an older release left it: a sent event kept its hashed payload
    older.record("1", "s", batch(("a", "Purchase", NOW, "system_generated"),
                                 ("b", "Purchase", NOW, "system_generated")), NOW)
    with engine.begin() as conn:
        conn.execute(update(events).where(events.c.event_id == "a").values(status=SENT))
    engine.dispose()

    ledger = Ledger.open(ledger_url)
    assert current_version(ledger.engine) == SCHEMA_VERSION
    with ledger.engine.connect() as conn:
        payloads = dict(conn.execute(select(events.c.event_id, events.c.payload)).all())
    assert payloads == {"a": "", "b": '{"event_id": "b", "event_name": "Purchase"}'}  # pending keeps it
    ledger.close()
