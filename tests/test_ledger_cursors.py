"""SQL sources' cursors in the ledger, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

from uploader.ledger import Ledger, schema
from uploader.ledger.schema import SCHEMA_VERSION, current_version, migrate

NOW = 1_795_168_800.0


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
    step = schema.MIGRATIONS.index(schema._add_cursors)
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:step])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", step)
    engine = create_engine(ledger_url)
    migrate(engine)
    assert current_version(engine) == step and not inspect(engine).has_table("cursors")
    engine.dispose()
    monkeypatch.undo()

    ledger = Ledger.open(ledger_url)
    assert current_version(ledger.engine) == SCHEMA_VERSION
    assert inspect(ledger.engine).has_table("cursors") and ledger.cursor("crm") is None
    ledger.close()
