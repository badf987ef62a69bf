"""The SQL source against real databases: SQLite always, PostgreSQL and MariaDB when
TEST_POSTGRES_URL / TEST_MYSQL_URL are set (each test gets its own schema or database).

End to end through the real pipeline and the sandbox Graph API: the sample CRM arrives
exactly once, changes are picked up by the next run, a deal already sent is not sent
again, a crash between read and record leaves the cursor, and the CRM is never written.
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, event

from connectors import Window
from connectors.sql_query import SqlQuery
from tests.crm import Crm, ago, sample_sources, write_config
from uploader.errors import SourceError
from uploader.ledger import Ledger
from uploader.pipeline import run_once
from uploader.sandbox import SandboxServer
from uploader.settings import Settings, load_settings

SAMPLE_EVENTS = [("Lead", "2001"), ("Lead", "2002"), ("Purchase", "1001"), ("Purchase", "1002"),
                 ("Purchase", "1003"), ("Purchase", "1007"), ("Subscribe", "3001"), ("Subscribe", "3002")]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def keys(events: list[dict]) -> list[tuple[str, str]]:
    return sorted((e["event_name"], e["custom_data"]["order_id"]) for e in events)


class _NoCursor:
    """A SourceState with no stored cursor and no memory: for reading one window directly."""

    def cursor(self, source: str) -> str | None:
        return None

    def set_cursor(self, source: str, value: str, now: float) -> None:
        raise AssertionError("not expected")

    def is_processed(self, source: str, sha256: str) -> bool:
        return False

    def mark_processed(self, source: str, sha256: str, name: str, rows: int, now: float) -> None:
        raise AssertionError("not expected")


@pytest.fixture
def crm(crm_url: str) -> Iterator[Crm]:
    database = Crm(crm_url)
    yield database
    database.close()


def settings_for(root: Path, config: str, env: dict[str, str], crm_url: str) -> Settings:
    return load_settings(write_config(root, config), environ={**env, "CRM_DATABASE_URL": crm_url})


def stored_cursor(settings: Settings, source: str) -> str | None:
    ledger = Ledger.open(settings.ledger_url)
    try:
        return ledger.cursor(source)
    finally:
        ledger.close()


def test_the_sample_crm_arrives_once_and_the_next_run_takes_only_the_changes(
        crm_url: str, tmp_path: Path, env: dict[str, str], sandbox: SandboxServer) -> None:
    crm = Crm(crm_url, seed=True)
    settings = settings_for(tmp_path / "project", sample_sources(), env, crm_url)
    untouched = crm.checksum()
    before = time.time()
    first = run_once(settings)
    after = time.time()

    assert first.exit_code() == 0, first.render()
    accepted = sandbox.accepted()
    assert keys(accepted) == SAMPLE_EVENTS
    by_id = {e["custom_data"]["order_id"]: e for e in accepted}
    assert {k: e["action_source"] for k, e in by_id.items() if e["action_source"] != "system_generated"} == {
        "1002": "phone_call", "1003": "phone_call"}
    assert {k: (e["custom_data"].get("value"), e["custom_data"].get("currency")) for k, e in by_id.items()} == {
        "1001": (1250, "USD"), "1002": (899.99, "GBP"), "1003": (2300.5, "EUR"), "1007": (120000, "JPY"),
        "2001": (None, None), "2002": (None, None), "3001": (4800, "USD"), "3002": (1250, "USD")}
    for table, column, ids in (("deals", "closed_at", ["1001", "1002", "1003", "1007"]),
                               ("leads", "qualified_at", ["2001", "2002"]),
                               ("renewals", "renewed_at", ["3001", "3002"])):
        assert [by_id[i]["event_time"] for i in ids] == [crm.seconds(table, column, int(i)) for i in ids]
    assert by_id["1001"]["user_data"]["em"] == sha("john_smith@gmail.com")
    assert by_id["1001"]["user_data"]["ph"] == sha("16505551212")
    assert by_id["1001"]["user_data"]["external_id"] == sha("101")
    assert by_id["1003"]["user_data"]["fn"] == sha("valéry") and by_id["1003"]["user_data"]["ph"] == sha("33612345678")
    assert by_id["1007"]["user_data"]["ln"] == sha("山田") and by_id["1007"]["user_data"]["ct"] == sha("東京")
    assert by_id["1001"]["event_id"] == sha("capi-uploader/v1|order|Purchase|1001")[:32]

    cursor = stored_cursor(settings, "crm_deals")
    assert cursor is not None and cursor.endswith("Z")
    until = datetime.fromisoformat(cursor)
    assert before <= until.timestamp() <= after
    assert crm.checksum() == untouched

    # After the run the CRM changes. Some rows carry the first run's end as updated_at (stored to
    # the second on SQLite and MySQL), the closed lower bound of the next window; the updates get
    # theirs from the database (trigger, ON UPDATE), just before the next run starts.
    crm.insert("deals", id=1008, contact_id=106, stage="closed_won", channel="phone", amount=Decimal("45.10"),
               currency="USD", closed_at=ago(hours=1), updated_at=until)
    crm.update("deals", 1001, amount=Decimal("1300.00"))                            # already sent
    crm.update("deals", 1004, stage="closed_won", closed_at=ago(minutes=20))
    crm.update("leads", 2003, status="qualified", qualified_at=ago(minutes=30), updated_at=until)
    crm.insert("renewals", id=3003, contact_id=103, deal_id=1003, amount=Decimal("2300.50"), currency="EUR",
               renewed_at=ago(minutes=10), updated_at=until)
    changed = crm.checksum()
    second = run_once(settings)

    new = sandbox.accepted()[len(accepted):]
    assert keys(new) == [("Lead", "2003"), ("Purchase", "1004"), ("Purchase", "1008"), ("Subscribe", "3003")]
    assert second.rows_read == 5 and second.duplicates == 1 and second.exit_code() == 0
    assert {e["custom_data"]["order_id"]: e["custom_data"].get("value") for e in new} == {
        "1004": 500, "1008": 45.1, "2003": None, "3003": 2300.5}
    assert crm.checksum() == changed
    assert stored_cursor(settings, "crm_deals") > cursor
    crm.close()


def test_a_crash_between_read_and_send_leaves_the_cursor_and_the_rerun_sends_each_deal_once(
        crm: Crm, crm_url: str, tmp_path: Path, env: dict[str, str], sandbox: SandboxServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    crm.insert("contacts", id=1, email="buyer@example.com", country="US")
    crm.insert_many("deals", [{"id": i, "contact_id": 1, "stage": "closed_won", "channel": "web",
                               "amount": Decimal("10.00"), "currency": "USD", "closed_at": ago(hours=2),
                               "updated_at": ago(hours=1)} for i in range(1, 251)])
    settings = settings_for(tmp_path / "project", sample_sources(only="crm_deals"), env, crm_url)

    real_existing, calls = Ledger.existing, []

    def crash_on_second_chunk(self: Ledger, dataset_id: str, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        calls.append(1)  # the ledger is asked which of each chunk's events it holds, before any is sent
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return real_existing(self, dataset_id, keys)

    monkeypatch.setattr(Ledger, "existing", crash_on_second_chunk)
    with pytest.raises(RuntimeError, match="power cut"):
        run_once(settings)
    assert stored_cursor(settings, "crm_deals") is None
    assert sandbox.accepted() == []  # the first chunk's 100 events were still waiting for a full batch

    monkeypatch.setattr(Ledger, "existing", real_existing)
    rerun = run_once(settings)
    assert rerun.rows_read == 250 and rerun.events_new == 250 and rerun.sent == 250
    order_ids = [e["custom_data"]["order_id"] for e in sandbox.accepted()]
    assert sorted(order_ids, key=int) == [str(i) for i in range(1, 251)]
    assert stored_cursor(settings, "crm_deals") is not None

    third = run_once(settings)  # nothing changed: nothing read, nothing sent
    assert third.rows_read == 0 and third.sent == 0 and len(sandbox.accepted()) == 250


def test_naive_times_are_read_in_the_source_zone_and_aware_ones_keep_their_instant(
        crm: Crm, crm_url: str, tmp_path: Path, env: dict[str, str], sandbox: SandboxServer) -> None:
    new_york = ZoneInfo("America/New_York")

    def wall_clock(moment: datetime) -> object:  # New York's local time, as a naive value of this database
        local = moment.astimezone(new_york).replace(tzinfo=None)
        return local.strftime("%Y-%m-%d %H:%M:%S") if crm.dialect == "sqlite" else local

    naive_type = {"sqlite": "TEXT", "postgresql": "TIMESTAMP", "mysql": "DATETIME"}[crm.dialect]
    aware_type = {"sqlite": "TEXT", "postgresql": "TIMESTAMP WITH TIME ZONE", "mysql": "DATETIME"}[crm.dialect]
    crm.execute(f"CREATE TABLE stamps (id INTEGER PRIMARY KEY, email VARCHAR(50), naive_at {naive_type}, "
                f"aware_at {aware_type}, changed_at {naive_type})")
    moment = ago(hours=5)
    # SQLite keeps an offset in the text; MySQL has no type with one, so there both columns are naive.
    aware = {"sqlite": moment.isoformat(), "postgresql": moment, "mysql": wall_clock(moment)}[crm.dialect]
    # Row 2 changed 6 days 22 hours ago (New York time): inside the first window only if the
    # window's bounds are compared in New York time too.
    for row, changed in ((1, ago(hours=4)), (2, ago(days=7, hours=-2))):
        crm.insert("stamps", id=row, email="tz@example.com", naive_at=wall_clock(moment), aware_at=aware,
                   changed_at=wall_clock(changed))
    (tmp_path / "q").mkdir()
    sources = '[ledger]\nurl = "sqlite:///state/ledger.db"\n'
    for column, name in (("naive_at", "Lead"), ("aware_at", "Schedule")):
        (tmp_path / "q" / f"{column}.sql").write_text(
            f"SELECT '{name}' AS event_name, {column} AS event_time, id AS order_id, email, changed_at\n"
            "FROM stamps WHERE changed_at >= :since AND changed_at < :until\n", encoding="utf-8")
        sources += (f'\n[[sources]]\nname = "{column}"\ntype = "sql"\nurl = "${{CRM_DATABASE_URL}}"\n'
                    f'query = "q/{column}.sql"\ncursor = "changed_at"\ntimezone = "America/New_York"\n')
    report = run_once(settings_for(tmp_path, sources, env, crm_url))

    assert report.exit_code() == 0, report.render()
    times = {(e["event_name"], e["custom_data"]["order_id"]): e["event_time"] for e in sandbox.accepted()}
    assert times == {(name, row): int(moment.timestamp()) for name in ("Lead", "Schedule") for row in "12"}


def test_decimal_values_are_exact_and_a_null_amount_is_refused_with_its_row_and_deal(
        crm: Crm, crm_url: str, tmp_path: Path, env: dict[str, str], sandbox: SandboxServer) -> None:
    crm.insert("contacts", id=1, email="buyer@example.com", phone=None, country="US")
    amounts = [Decimal("0.10"), Decimal("19.99"), Decimal("1234567.89"), None, Decimal("9999999999.99")]
    for number, amount in enumerate(amounts, start=1):
        crm.insert("deals", id=number, contact_id=1, stage="closed_won", channel="web", amount=amount,
                   currency="EUR", closed_at=ago(hours=3), updated_at=ago(hours=2, seconds=-number))
    settings = settings_for(tmp_path / "project", sample_sources(only="crm_deals"), env, crm_url)
    report = run_once(settings)

    values = {e["custom_data"]["order_id"]: e["custom_data"]["value"] for e in sandbox.accepted()}
    assert values == {"1": 0.1, "2": 19.99, "3": 1234567.89, "5": 9999999999.99}
    with report.quarantine_path.open(encoding="utf-8", newline="") as handle:
        (refused,) = list(csv.DictReader(handle))
    assert refused["source"] == "crm_deals" and refused["file"].startswith("updated_at ")
    assert [refused[k] for k in ("line", "order_id/event_id", "column", "reason")] == [
        "4", "4", "value", "purchase_without_value"]


def test_a_large_table_is_streamed_in_bounded_chunks(crm: Crm, crm_url: str, tmp_path: Path) -> None:
    crm.insert("contacts", id=1, email="bulk@example.com")
    rows = [{"id": i, "contact_id": 1, "stage": "closed_won", "channel": "web", "amount": Decimal("1.00"),
             "currency": "USD", "closed_at": ago(hours=3), "updated_at": ago(hours=2)} for i in range(1, 20_001)]
    for start in range(0, len(rows), 5000):
        crm.insert_many("deals", rows[start:start + 5000])
    settings = settings_for(tmp_path / "project", sample_sources(only="crm_deals"), {}, crm_url)
    (unit,) = SqlQuery(settings.sources[0], chunk_size=1000).units()
    assert not unit.is_done(_NoCursor())
    cursors: list[str] = []

    def seen(conn: object, cursor: object, *args: object) -> None:
        cursors.append(type(cursor).__name__)

    event.listen(Engine, "before_cursor_execute", seen)
    sizes, first_rows = [], []
    try:
        for chunk in unit.chunks():
            sizes.append(len(chunk.frame))
            first_rows.append(chunk.frame.index[0])
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert sizes == [1000] * 20
    assert first_rows == list(range(1, 20_001, 1000))
    streaming = {"sqlite": "Cursor", "postgresql": "ServerCursor", "mysql": "SSCursor"}[crm.dialect]
    assert cursors[-1] == streaming  # the query itself ran on a server-side (streaming) cursor


def test_the_connector_never_writes_even_when_its_query_tries(crm: Crm, crm_url: str, tmp_path: Path) -> None:
    crm.insert("contacts", id=1, email="keep@example.com")
    untouched = crm.checksum()
    # PostgreSQL's server-side cursor takes no DELETE at all; a sequence is its sneakier write.
    evil = {"postgresql": "SELECT nextval(pg_get_serial_sequence('contacts', 'id')) AS n WHERE :since < :until"}
    (tmp_path / "evil.sql").write_text(evil.get(crm.dialect, "DELETE FROM contacts WHERE :since < :until"),
                                       encoding="utf-8")
    config = ('[ledger]\nurl = "sqlite:///state/ledger.db"\n\n[[sources]]\nname = "evil"\ntype = "sql"\n'
              f'url = "${{CRM_DATABASE_URL}}"\nquery = "{tmp_path / "evil.sql"}"\ncursor = "updated_at"\n')
    settings = settings_for(tmp_path / "project", config, {}, crm_url)
    (unit,) = SqlQuery(settings.sources[0], chunk_size=100).units()
    unit.is_done(_NoCursor())
    with pytest.raises(SourceError) as caught:
        list(unit.chunks())
    message = str(caught.value)
    assert message.startswith(f"the query {tmp_path / 'evil.sql'} failed on ") and "\n" not in message
    assert any(word in message.lower() for word in ("read-only", "readonly", "read only")), message
    assert crm.checksum() == untouched


def test_lookback_rereads_late_rows_and_the_ledger_drops_what_it_has(
        crm: Crm, crm_url: str, tmp_path: Path, env: dict[str, str], sandbox: SandboxServer) -> None:
    crm.insert("contacts", id=1, email="late@example.com")
    crm.insert("deals", id=1, contact_id=1, stage="closed_won", channel="web", amount=Decimal("5.00"),
               currency="USD", closed_at=ago(hours=3), updated_at=ago(hours=2))
    settings = settings_for(tmp_path / "project", sample_sources(only="crm_deals", extra='lookback = "1h"\n'),
                            env, crm_url)
    run_once(settings)
    cursor = datetime.fromisoformat(stored_cursor(settings, "crm_deals") or "")
    # A row committed late: its updated_at is before the cursor, inside the look-back.
    crm.insert("deals", id=2, contact_id=1, stage="closed_won", channel="web", amount=Decimal("6.00"),
               currency="USD", closed_at=ago(hours=1), updated_at=cursor - timedelta(minutes=20))
    crm.update("deals", 1, updated_at=cursor - timedelta(minutes=10))  # re-read, already sent
    second = run_once(settings)
    assert keys(sandbox.accepted()) == [("Purchase", "1"), ("Purchase", "2")]
    assert second.rows_read == 2 and second.duplicates == 1


def test_an_unreachable_crm_skips_its_source_with_one_line_and_no_password(
        tmp_path: Path, env: dict[str, str], sandbox: SandboxServer) -> None:
    url = "postgresql+psycopg://crm_reader:s3cret-pw@127.0.0.1:1/crm"
    settings = settings_for(tmp_path / "project", sample_sources(only="crm_deals"), env, url)
    assert "s3cret" not in repr(settings)
    report = run_once(settings)
    assert report.exit_code() == 1
    (error,) = report.window_errors
    assert report.file_errors == [] and error.startswith("crm_deals/updated_at ")
    assert f"  query window not read: {error}" in report.render().splitlines()
    assert ": cannot connect to postgresql+psycopg://crm_reader:***@127.0.0.1:1/crm: connection failed" in error
    assert "s3cret" not in error and "\n" not in error
    assert stored_cursor(settings, "crm_deals") is None


def test_a_missing_sqlite_crm_is_not_created(tmp_path: Path, env: dict[str, str], sandbox: SandboxServer) -> None:
    missing = tmp_path / "nowhere" / "crm.db"
    settings = settings_for(tmp_path / "project", sample_sources(), env, f"sqlite:///{missing}")
    report = run_once(settings)
    assert len(report.window_errors) == 3 and "unable to open database file" in report.window_errors[0]
    assert not missing.exists() and not missing.parent.exists()


def test_old_deals_touched_today_are_not_refused_and_a_backfill_leaves_the_cursor(
        crm: Crm, crm_url: str, tmp_path: Path, env: dict[str, str], sandbox: SandboxServer) -> None:
    crm.insert("contacts", id=1, email="old@example.com")
    for row, closed, updated in ((1, ago(days=3), ago(days=3)), (2, ago(hours=2), ago(hours=1)),
                                 (3, ago(days=9), ago(days=2))):  # closed long ago, a note added since
        crm.insert("deals", id=row, contact_id=1, stage="closed_won", channel="web", amount=Decimal("7.00"),
                   currency="USD", closed_at=closed, updated_at=updated)
    settings = settings_for(tmp_path / "project", sample_sources(only="crm_deals"), env, crm_url)
    first = run_once(settings)
    assert keys(sandbox.accepted()) == [("Purchase", "1"), ("Purchase", "2")]
    assert first.rows_read == 2 and first.refused_total == 0 and first.exit_code() == 0
    cursor = stored_cursor(settings, "crm_deals")

    backfill = run_once(settings, window=Window(time.time() - 10 * 86_400, None))
    assert backfill.rows_read == 3 and backfill.events_new == 0 and backfill.sent == 0  # deal 3 is too old
    assert stored_cursor(settings, "crm_deals") == cursor
